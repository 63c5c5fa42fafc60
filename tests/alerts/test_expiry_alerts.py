"""Expiry alerts: policies and webhooks through the SDK, thresholds sent once, retries with backoff, a gauge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alerthelpers import Receiver
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from originlock.alerts.policy import CertExpiry, PolicyView, backoff, due_alerts
from originlock.api.app import create_app
from originlock.server.alerts_job import ExpiryAlerts
from originlock.server.bootstrap import bootstrap
from originlock.store import aop, zones
from originlock.testing.sdk_client import sdk
from originlock.testing.upload_pki import UploadPki, leaf_pems

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def cert(days: float, kind: str = "zone", zone: str = "z1") -> CertExpiry:
    return CertExpiry(f"c-{days}-{kind}", kind, zone, "example.test", "42", NOW + timedelta(days=days))


ZONE_POLICY = PolicyView("p1", "zone expiry", "zone_aop_custom_certificate_expiration_type", True, None)


def test_thresholds_pick_the_most_urgent_one() -> None:
    assert due_alerts([cert(45)], [ZONE_POLICY], NOW) == []
    assert [a.threshold_days for a in due_alerts([cert(29)], [ZONE_POLICY], NOW)] == [30]
    assert [a.threshold_days for a in due_alerts([cert(10)], [ZONE_POLICY], NOW)] == [14]
    assert [a.threshold_days for a in due_alerts([cert(-1)], [ZONE_POLICY], NOW)] == [0]
    # Hostname certificates need the hostname alert type; disabled policies and other zones get nothing.
    assert due_alerts([cert(10, "hostname")], [ZONE_POLICY], NOW) == []
    disabled = PolicyView("p2", "x", ZONE_POLICY.alert_type, False, None)
    other_zone = PolicyView("p3", "x", ZONE_POLICY.alert_type, True, frozenset({"z2"}))
    assert due_alerts([cert(10)], [disabled, other_zone], NOW) == []
    assert backoff(1) == timedelta(minutes=1) and backoff(3) == timedelta(minutes=4)
    assert backoff(30) == timedelta(hours=6)


def test_alerts_end_to_end(store_url: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    deployment = bootstrap(tmp_path / "data", store_url)
    store = deployment.store
    client = TestClient(create_app(store))
    cf = sdk(client, deployment.new_admin_token)
    account = deployment.account_id
    hook = cf.alerting.destinations.webhooks.create(account_id=account, name="ops", url=receiver.url, secret="s3cret")
    assert hook is not None and hook.id
    listed = list(cf.alerting.destinations.webhooks.list(account_id=account))
    assert [w.url for w in listed] == [receiver.url] and "s3cret" not in str(listed)
    created = cf.alerting.policies.create(
        account_id=account,
        name="AOP expiry",
        alert_type="zone_aop_custom_certificate_expiration_type",
        enabled=True,
        mechanisms={"webhooks": [{"id": hook.id}]},
    )
    assert created is not None
    policy = cf.alerting.policies.get(created.id, account_id=account)
    assert policy is not None and policy.alert_type == "zone_aop_custom_certificate_expiration_type"
    assert policy.mechanisms is not None and policy.mechanisms.webhooks[0].id == hook.id  # type: ignore[index]

    pki = UploadPki.create()
    real_now = datetime.now(UTC)
    with store.write() as conn:
        zone = zones.create_zone(conn, name="alerts.test", account_id=account)
        leaf = pki.client("alerts.test", days=40)
        row = aop.upload_cert(conn, store.sealer, zone.id, "zone", *leaf_pems(leaf), real_now)
    clock = {"now": real_now}
    job = ExpiryAlerts(store, clock=lambda: clock["now"])

    assert job.tick() == 0 and receiver.received == []  # 40 days left: nothing yet
    gauge = REGISTRY.get_sample_value(
        "originlock_certificate_days_to_expiry", {"zone": "alerts.test", "kind": "zone", "certificate_id": row.id}
    )
    assert gauge is not None and 39 < gauge <= 40

    clock["now"] = real_now + timedelta(days=11)  # 29 days left: the 30-day alert, once
    assert job.tick() == 1
    assert job.tick() == 0
    body, auth = receiver.received[0]
    assert auth == "s3cret"
    assert body["alert_type"] == "zone_aop_custom_certificate_expiration_type" and body["data"]["threshold_days"] == 30
    assert body["data"]["certificate_id"] == row.id and "alerts.test" in body["text"]

    receiver.fail = True  # 14-day alert: the webhook is down, retried with backoff
    clock["now"] = real_now + timedelta(days=27)
    assert job.tick() == 0
    assert job.tick() == 0  # not retried before its backoff
    receiver.fail = False
    clock["now"] += timedelta(minutes=2)
    assert job.tick() == 1
    assert [b["data"]["threshold_days"] for b, _ in receiver.received] == [30, 14]

    bad = client.post(
        f"/client/v4/accounts/{account}/alerting/v3/policies",
        headers={"Authorization": f"Bearer {deployment.new_admin_token}"},
        json={"name": "x", "alert_type": "dos_attack_l7", "mechanisms": {}},
    )
    assert bad.status_code == 400 and "not supported" in bad.json()["errors"][0]["message"]
    store.close()


def test_exposure_events_reach_webhooks(store_url: str, tmp_path: Path, receiver: Receiver) -> None:
    from originlock.server.alerts_notify import WebhookQueueNotifier
    from originlock.store import alerts

    deployment = bootstrap(tmp_path / "data", store_url)
    store = deployment.store
    with store.write() as conn:
        hook = alerts.create_webhook(
            conn, store.sealer, deployment.account_id, name="ops", url=receiver.url, secret=None
        )
        alerts.create_policy(
            conn,
            deployment.account_id,
            name="exposed",
            alert_type="originlock_origin_exposed",
            enabled=True,
            mechanisms={"webhooks": [{"id": hook}]},
            filters={},
            description="",
        )
    event = {
        "alert_type": "originlock_origin_exposed",
        "zone_id": "z",
        "zone_name": "example.test",
        "hostname": "app.example.test",
        "verdict": "OPEN",
        "previous_verdict": "LOCKED",
        "checked_at": "2026-11-27T10:00:00+00:00",
        "text": "origin 127.0.0.1:443 of app.example.test is OPEN",
    }
    notifier = WebhookQueueNotifier(store)
    notifier.notify(event)
    notifier.notify(event)  # the same event twice is delivered once
    assert ExpiryAlerts(store).tick() == 1
    assert len(receiver.received) == 1
    body, auth = receiver.received[0]
    assert body["alert_type"] == "originlock_origin_exposed" and body["data"]["hostname"] == "app.example.test"
    assert auth is None
    store.close()
