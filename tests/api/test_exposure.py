"""GET /zones/{zone_id}/origin_tls_client_auth/exposure and GET /metrics, over records the monitor wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from originlock.store.origin_checks import OriginCheck, put_check, status_write

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def _record(api, zone_id: str, hostname: str, verdict: str, previous: str | None = None) -> None:  # type: ignore[no-untyped-def]
    with status_write(api.store) as conn:
        put_check(
            conn,
            OriginCheck(
                zone_id=zone_id,
                zone_name="",
                hostname=hostname,
                origin="127.0.0.1:443",
                verdict=verdict,
                reasons=(f"reason for {verdict}",),
                checked_at=T1,
                previous_verdict=previous,
                changed_at=T1 if previous else T0,
            ),
        )


def test_exposure_lists_the_zone_records(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("example.test")
    other = api.zone("other.test")
    base = f"/client/v4/zones/{zone}/origin_tls_client_auth/exposure"
    empty = api.client.get(base, headers=api.admin)
    assert empty.status_code == 200 and empty.json()["result"] == []

    _record(api, zone, "www.example.test", "LOCKED")
    _record(api, zone, "app.example.test", "OPEN", previous="LOCKED")
    _record(api, other, "a.other.test", "MISCONFIGURED")
    body = api.client.get(base, headers=api.admin).json()
    assert body["success"] is True and body["result_info"]["count"] == 2
    app, www = body["result"]
    assert app == {
        "hostname": "app.example.test",
        "origin": "127.0.0.1:443",
        "verdict": "OPEN",
        "reasons": ["reason for OPEN"],
        "checked_at": "2026-11-27T11:00:00.000000Z",
        "previous_verdict": "LOCKED",
        "changed_at": "2026-11-27T11:00:00.000000Z",
    }
    assert www["verdict"] == "LOCKED" and www["previous_verdict"] is None


def test_exposure_errors(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("example.test")
    missing = api.client.get(f"/client/v4/zones/{'0' * 32}/origin_tls_client_auth/exposure", headers=api.admin)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == 1001
    bad = api.client.get("/client/v4/zones/nope/origin_tls_client_auth/exposure", headers=api.admin)
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == 7003
    assert api.client.get(f"/client/v4/zones/{zone}/origin_tls_client_auth/exposure").status_code == 401
    made = api.client.post(
        "/client/v4/user/tokens", json={"name": "dns only", "permissions": ["dns:read"]}, headers=api.admin
    )
    weak = {"Authorization": f"Bearer {made.json()['result']['value']}"}
    denied = api.client.get(f"/client/v4/zones/{zone}/origin_tls_client_auth/exposure", headers=weak)
    assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == 10000
    # Read-only: there is nothing to write through the API.
    posted = api.client.post(f"/client/v4/zones/{zone}/origin_tls_client_auth/exposure", headers=api.admin)
    assert posted.status_code in (404, 405)


def test_metrics_export_one_series_per_verdict(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("example.test")
    _record(api, zone, "app.example.test", "OPEN", previous="LOCKED")
    r = api.client.get("/metrics")  # no token, like /healthz
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    series = 'originlock_origin_exposure{hostname="app.example.test",verdict="%s",zone="example.test"}'
    assert f"{series % 'OPEN'} 1.0" in lines
    for verdict in ("LOCKED", "MISCONFIGURED", "UNREACHABLE"):
        assert f"{series % verdict} 0.0" in lines
    stamp = 'originlock_origin_exposure_checked_timestamp_seconds{hostname="app.example.test",zone="example.test"}'
    (value,) = [line.split()[-1] for line in lines if line.startswith(stamp)]
    assert float(value) == T1.timestamp()
