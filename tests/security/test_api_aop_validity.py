"""Issue 10 item 11: an AOP certificate whose notBefore is in the future was accepted as ``active`` and
presented at once (the origin refused every request). Now it is ``pending_deployment`` until notBefore
(Cloudflare's status for a certificate not yet in service), and the edge's snapshot never presents it
before then: at zone level the previous certificate stays in service; an association naming it fails
closed (525), as for any other unusable certificate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from originlock.store.compile import compile_snapshot
from originlock.testing.api_env import ApiEnv, api_env
from originlock.testing.upload_pki import UploadPki, leaf_pems
from originlock.tls.issue import issue_leaf, new_key

NOW = datetime.now(UTC).replace(microsecond=0)
LATER = NOW + timedelta(days=2)


@pytest.fixture(autouse=True)
def clock() -> dict[str, datetime]:
    # The clock starts when the test does: certificates issued "now" by the test PKI must not be newer than
    # NOW (set at import, it lagged by the minutes a full suite takes before reaching this module).
    global NOW, LATER
    NOW = datetime.now(UTC).replace(microsecond=0)
    LATER = NOW + timedelta(days=2)
    return {"now": NOW}


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: dict[str, datetime]) -> Iterator[ApiEnv]:
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    with api_env(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "data", clock=lambda: clock["now"]) as env:
        yield env


def _future_leaf(pki: UploadPki, cn: str) -> tuple[str, str]:
    leaf = issue_leaf(pki.ca, cn, now=NOW, days=90, key=new_key(), not_before=NOW + timedelta(days=1))
    return leaf_pems(leaf)


def _proxied_zone(api: ApiEnv, name: str) -> str:
    zone = api.zone(name)
    api.ok("POST", f"/zones/{zone}/dns_records", {"type": "A", "name": "www", "content": "192.0.2.1", "proxied": True})
    api.ok("PATCH", f"/zones/{zone}/settings/ssl", {"value": "full"})
    api.ok("PUT", f"/zones/{zone}/origin_tls_client_auth/settings", {"enabled": True})
    return zone


def _upload(api: ApiEnv, zone: str, pems: tuple[str, str], hostname: bool = False) -> dict[str, str]:
    path = f"/zones/{zone}/origin_tls_client_auth" + ("/hostnames/certificates" if hostname else "")
    result: dict[str, str] = api.ok("POST", path, {"certificate": pems[0], "private_key": pems[1]})
    return result


def test_zone_certificate_before_not_before(api: ApiEnv, clock: dict[str, datetime]) -> None:
    pki = UploadPki.create()
    zone = _proxied_zone(api, "a.test")
    current = _upload(api, zone, leaf_pems(pki.client("current")))
    future = _upload(api, zone, _future_leaf(pki, "next"))
    assert (current["status"], future["status"]) == ("active", "pending_deployment")
    listed = {c["id"]: c["status"] for c in api.ok("GET", f"/zones/{zone}/origin_tls_client_auth")}
    assert listed == {current["id"]: "active", future["id"]: "pending_deployment"}
    # The edge keeps presenting the current certificate, although the pending one was uploaded later.
    route = compile_snapshot(api.store, NOW).routes["www.a.test"]
    assert route.client_cert is not None and route.client_cert.id == current["id"]
    assert route.client_cert_error is None
    # Once valid, the new one is active and presented.
    clock["now"] = LATER
    assert api.ok("GET", f"/zones/{zone}/origin_tls_client_auth/{future['id']}")["status"] == "active"
    route = compile_snapshot(api.store, LATER).routes["www.a.test"]
    assert route.client_cert is not None and route.client_cert.id == future["id"]


def test_only_a_pending_zone_certificate_is_never_presented(api: ApiEnv) -> None:
    zone = _proxied_zone(api, "b.test")
    _upload(api, zone, _future_leaf(UploadPki.create(), "next"))
    route = compile_snapshot(api.store, NOW).routes["www.b.test"]
    assert route.client_cert is None  # tls_client_auth is off: nothing else to present


def test_association_to_a_pending_certificate_fails_closed(api: ApiEnv, clock: dict[str, datetime]) -> None:
    pki = UploadPki.create()
    zone = _proxied_zone(api, "c.test")
    _upload(api, zone, leaf_pems(pki.client("zone cert")))
    pending = _upload(api, zone, _future_leaf(pki, "www.c.test"), hostname=True)
    assert pending["status"] == "pending_deployment"
    config = [{"hostname": "www.c.test", "cert_id": pending["id"], "enabled": True}]
    (association,) = api.ok("PUT", f"/zones/{zone}/origin_tls_client_auth/hostnames", {"config": config})
    assert association["cert_status"] == "pending_deployment"
    route = compile_snapshot(api.store, NOW).routes["www.c.test"]
    # Not the zone certificate either: the association chose this one, and it cannot be used yet (525).
    assert route.client_cert is None and route.client_cert_error is not None
    assert "not valid before" in route.client_cert_error
    clock["now"] = LATER
    assert api.ok("GET", f"/zones/{zone}/origin_tls_client_auth/hostnames/www.c.test")["cert_status"] == "active"
    route = compile_snapshot(api.store, LATER).routes["www.c.test"]
    assert route.client_cert is not None and route.client_cert.id == pending["id"]
