"""Accounts get/edit, custom certificate prioritize, alerting available_alerts / history / webhook PUT, and the
custom-certificate expiry alert, all through the official SDK."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cloudflare import NotFoundError, PermissionDeniedError

from originlock.server.alerts_job import ExpiryAlerts
from originlock.testing.sdk_client import bearer, sdk
from originlock.testing.upload_pki import UploadPki, leaf_pems
from originlock.tls.issue import issue_leaf

V4 = "/client/v4"
# Store-independent behaviour (the API's shapes): one backend is enough; tests/store and the DNS, audit and
# paging tests run both.
pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@pytest.fixture
def webhook_sink() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP endpoint on loopback recording what it is sent."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_account_get_and_edit(api) -> None:  # type: ignore[no-untyped-def]
    cf = sdk(api.client, bearer(api.admin))
    account = cf.accounts.get(account_id=api.account_id)
    assert account is not None and account.id == api.account_id and account.settings is not None
    assert account.settings.enforce_twofactor is False
    edited = cf.accounts.update(
        account_id=api.account_id,
        id=api.account_id,
        name="Renamed",
        type="standard",
        settings={"enforce_twofactor": True},
    )
    assert edited is not None and edited.name == "Renamed" and edited.settings.enforce_twofactor is True  # type: ignore[union-attr]
    assert cf.accounts.get(account_id=api.account_id).name == "Renamed"  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        cf.accounts.get(account_id="0" * 32)
    # A token limited to one zone may not rename the account.
    zone = api.zone("acct.test")
    r = api.client.post(
        f"{V4}/user/tokens", json={"name": "z", "permissions": ["zone:read"], "zones": [zone]}, headers=api.admin
    )
    scoped = sdk(api.client, r.json()["result"]["value"])
    with pytest.raises(PermissionDeniedError):
        scoped.accounts.update(account_id=api.account_id, id=api.account_id, name="x", type="standard")


def test_custom_certificates_prioritize(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    cf = sdk(api.client, bearer(api.admin))
    zone = api.zone("prio.test")
    ids = []
    for name in ("a.prio.test", "b.prio.test", "c.prio.test"):
        cert, key = leaf_pems(pki.server(name))
        ids.append(cf.custom_certificates.create(zone_id=zone, certificate=cert, private_key=key).id)  # type: ignore[union-attr]
    ordered = cf.custom_certificates.prioritize.update(
        zone_id=zone, certificates=[{"id": ids[0], "priority": 30}, {"id": ids[2], "priority": 20}]
    )
    listed = list(ordered)
    assert {c.id: c.priority for c in listed}[ids[0]] == 30
    assert [c.id for c in listed][:2] == [ids[0], ids[2]]
    # One unknown id: nothing changes.
    r = api.client.put(
        f"{V4}/zones/{zone}/custom_certificates/prioritize",
        json={"certificates": [{"id": ids[1], "priority": 99}, {"id": "f" * 32, "priority": 1}]},
        headers=api.admin,
    )
    assert r.status_code == 404
    assert cf.custom_certificates.get(ids[1], zone_id=zone).priority != 99  # type: ignore[union-attr]


def test_alerting_catalogue_history_and_webhook_put(api, pki: UploadPki, webhook_sink) -> None:  # type: ignore[no-untyped-def]
    url, received = webhook_sink
    cf = sdk(api.client, bearer(api.admin))
    account = api.account_id
    available = cf.alerting.available_alerts.list(account_id=account)
    types = {item.type for group in (available or {}).values() for item in group}
    assert {
        "zone_aop_custom_certificate_expiration_type",
        "hostname_aop_custom_certificate_expiration_type",
        "custom_ssl_certificate_event_type",
        "originlock_origin_exposed",
    } == types
    hook = cf.alerting.destinations.webhooks.create(account_id=account, name="first", url="http://127.0.0.1:9/x")
    assert hook is not None
    cf.alerting.destinations.webhooks.update(hook.id, account_id=account, name="ops", url=url, secret="s3")  # type: ignore[arg-type]
    got = cf.alerting.destinations.webhooks.get(hook.id, account_id=account)  # type: ignore[arg-type]
    assert got is not None and (got.name, got.url) == ("ops", url)
    cf.alerting.policies.create(
        account_id=account,
        name="edge cert expiry",
        alert_type="custom_ssl_certificate_event_type",  # type: ignore[arg-type]
        enabled=True,
        mechanisms={"webhooks": [{"id": hook.id}]},
    )
    r = api.client.post(
        f"{V4}/accounts/{account}/alerting/v3/policies",
        json={"name": "x", "alert_type": "made_up_type", "mechanisms": {}},
        headers=api.admin,
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 17001
    assert list(cf.alerting.history.list(account_id=account)) == []

    zone = api.zone("hist.test")
    now = datetime.now(UTC)
    leaf = issue_leaf(pki.ca, "www.hist.test", now=now, days=10, client=False, server=True, sans=("www.hist.test",))
    cert, key = leaf_pems(leaf)
    cf.custom_certificates.create(zone_id=zone, certificate=cert, private_key=key)
    assert ExpiryAlerts(api.store, clock=lambda: now).tick() == 1
    assert received and received[0]["alert_type"] == "custom_ssl_certificate_event_type"
    assert "Custom edge certificate" in received[0]["text"]
    history = list(cf.alerting.history.list(account_id=account))
    assert len(history) == 1 and history[0].alert_type == "custom_ssl_certificate_event_type"
    assert history[0].mechanism == hook.id and history[0].mechanism_type == "webhook"
    assert "s3" not in json.dumps([h.model_dump(mode="json") for h in history])
    assert list(cf.alerting.history.list(account_id=account, since=datetime(2100, 1, 1, tzinfo=UTC))) == []
    r = api.client.get(f"{V4}/accounts/{account}/alerting/v3/history", params={"since": "yesterday"}, headers=api.admin)
    assert r.status_code == 400
