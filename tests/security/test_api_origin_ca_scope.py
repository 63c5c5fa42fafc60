"""Issue 10 item 2: a zone-A ``ssl:edit`` token deleted zone B's Origin CA certificate, issued one for
``www.b.test`` and read B's. Origin CA routes name no zone, so each resolves the zones of a certificate's
names and checks the token against every one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.testing.api_env import ApiEnv, api_env, csr_pem


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiEnv]:
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    with api_env(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "data") as env:
        yield env


def _issue(api: ApiEnv, hostnames: list[str], headers: dict[str, str] | None = None) -> object:
    body = {"csr": csr_pem(), "hostnames": hostnames, "request_type": "origin-ecc", "requested_validity": 7}
    return api.call("POST", "/certificates", headers or api.admin, body)


def test_zone_a_ssl_token_cannot_touch_zone_b_origin_certificates(api: ApiEnv) -> None:
    a, b = api.zone("a.test"), api.zone("b.test")
    b_cert = _issue(api, ["www.b.test"]).json()["result"]["id"]  # type: ignore[attr-defined]
    scoped = api.token(["ssl:edit"], [a])
    # The three attacks as sent: delete B's, issue one for www.b.test, read B's.
    r = api.call("DELETE", f"/certificates/{b_cert}", scoped)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000, r.text
    assert api.ok("GET", f"/certificates/{b_cert}")["revoked_at"] is None
    for names in (["www.b.test"], ["www.a.test", "www.b.test"], ["*.b.test"], ["b.test"], ["www.nozone.test"]):
        r = _issue(api, names, scoped)
        assert r.status_code == 403, (names, r.text)  # type: ignore[attr-defined]
    r = api.call("GET", f"/certificates/{b_cert}", scoped)
    assert r.status_code == 403 and "BEGIN CERTIFICATE" not in r.text
    assert api.call("GET", "/certificates", scoped, zone_id=b).status_code == 403
    assert [c["id"] for c in api.ok("GET", f"/certificates?zone_id={b}")] == [b_cert]
    # Its own zone works: issue, read, list, revoke; a read-only token reads but cannot revoke.
    mine = _issue(api, ["www.a.test", "*.a.test"], scoped)
    assert mine.status_code == 200, mine.text  # type: ignore[attr-defined]
    mine_id = mine.json()["result"]["id"]  # type: ignore[attr-defined]
    reader = api.token(["ssl:read"], [a])
    assert api.call("GET", f"/certificates/{mine_id}", reader).status_code == 200
    assert api.call("DELETE", f"/certificates/{mine_id}", reader).status_code == 403
    assert api.call("DELETE", f"/certificates/{mine_id}", scoped).status_code == 200


def test_a_certificate_spanning_zones_needs_every_zone(api: ApiEnv) -> None:
    a, b = api.zone("a.test"), api.zone("b.test")
    both = _issue(api, ["www.a.test", "www.b.test"]).json()["result"]["id"]  # type: ignore[attr-defined]
    a_only = api.token(["ssl:edit"], [a])
    assert api.call("DELETE", f"/certificates/{both}", a_only).status_code == 403
    assert api.call("DELETE", f"/certificates/{both}", api.token(["ssl:edit"], [a, b])).status_code == 200
    # A name under a longer zone belongs to that zone: sub.a.test is its own zone here.
    sub = api.zone("sub.a.test")
    r = _issue(api, ["www.sub.a.test"], a_only)
    assert r.status_code == 403  # type: ignore[attr-defined]
    assert _issue(api, ["www.sub.a.test"], api.token(["ssl:edit"], [sub])).status_code == 200  # type: ignore[attr-defined]
