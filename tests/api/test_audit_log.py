"""The audit log: every successful write, who made it, before and after, in Cloudflare's shape; no secrets."""

from __future__ import annotations

import json

import pytest
from cloudflare import PermissionDeniedError

from originlock.store import schema
from originlock.testing.sdk_client import bearer, sdk
from originlock.testing.upload_pki import UploadPki, leaf_pems

V4 = "/client/v4"


def test_writes_are_audited_without_secrets(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    cf = sdk(api.client, bearer(api.admin))
    admin_id = api.client.get(f"{V4}/user/tokens/verify", headers=api.admin).json()["result"]["id"]
    zone = api.zone("audit.test")
    record = cf.dns.records.create(zone_id=zone, type="A", name="app", content="192.0.2.1", ttl=1)
    cf.dns.records.edit(record.id, zone_id=zone, type="A", name="app", content="192.0.2.2", ttl=1)  # type: ignore[union-attr]
    cf.zones.settings.edit("ssl", zone_id=zone, value="strict")
    cert, key = leaf_pems(pki.server("www.audit.test"))
    cf.custom_certificates.create(zone_id=zone, certificate=cert, private_key=key)
    made = api.client.post(f"{V4}/user/tokens", json={"name": "ci", "permissions": ["dns:read"]}, headers=api.admin)
    secret_value = made.json()["result"]["value"]
    cf.alerting.destinations.webhooks.create(
        account_id=api.account_id, name="ops", url="http://127.0.0.1:9/hook", secret="hook-secret-xyz"
    )
    cf.dns.records.delete(record.id, zone_id=zone)  # type: ignore[union-attr]
    # A refused write is not an event.
    bad = api.client.post(
        f"{V4}/zones/{zone}/dns_records", json={"type": "A", "name": "x", "content": "no"}, headers=api.admin
    )
    assert bad.status_code == 400

    entries = list(cf.audit_logs.list(account_id=api.account_id, per_page=5, direction="asc"))
    kinds = [(e.action.type, e.resource.type) for e in entries]  # type: ignore[union-attr]
    assert kinds == [
        ("create", "zones"),
        ("create", "dns_records"),
        ("update", "dns_records"),
        ("update", "settings"),
        ("create", "custom_certificates"),
        ("create", "tokens"),
        ("create", "webhooks"),
        ("delete", "dns_records"),
    ], kinds
    assert all(e.actor.id == admin_id and e.when is not None for e in entries)  # type: ignore[union-attr]
    patch = entries[2]
    assert json.loads(patch.old_value)["content"] == "192.0.2.1"  # type: ignore[arg-type]
    assert json.loads(patch.new_value)["content"] == "192.0.2.2"  # type: ignore[arg-type]
    ssl = entries[3]
    assert (json.loads(ssl.old_value)["value"], json.loads(ssl.new_value)["value"]) == ("full", "strict")  # type: ignore[arg-type]
    deleted = entries[-1]
    assert json.loads(deleted.old_value)["content"] == "192.0.2.2" and deleted.new_value is None  # type: ignore[arg-type]
    assert deleted.resource.id == record.id and deleted.owner.id == api.account_id  # type: ignore[union-attr]
    # Nothing secret anywhere in the stored log.
    with api.store.read() as conn:
        stored = json.dumps([list(r) for r in conn.execute(schema.audit_events.select())])
    body = key.split("-----")[2].strip().splitlines()[0]
    for secret in (body, "PRIVATE KEY", secret_value, "hook-secret-xyz"):
        assert secret not in stored, secret
    # Filters: by action, by zone name, by time.
    deletes = list(cf.audit_logs.list(account_id=api.account_id, action={"type": "delete"}))
    assert [e.id for e in deletes] == [deleted.id]
    assert len(list(cf.audit_logs.list(account_id=api.account_id, zone={"name": "audit.test"}))) == 6
    assert list(cf.audit_logs.list(account_id=api.account_id, since="2100-01-01")) == []
    newest = next(iter(cf.audit_logs.list(account_id=api.account_id)))
    assert newest.id == deleted.id


def test_audit_log_needs_an_unrestricted_token(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("scoped.test")
    made = api.client.post(
        f"{V4}/user/tokens", json={"name": "z", "permissions": ["dns:edit"], "zones": [zone]}, headers=api.admin
    )
    scoped = sdk(api.client, made.json()["result"]["value"])
    scoped.dns.records.create(zone_id=zone, type="TXT", name="t", content="by scoped", ttl=1)
    with pytest.raises(PermissionDeniedError):
        list(scoped.audit_logs.list(account_id=api.account_id))
    cf = sdk(api.client, bearer(api.admin))
    last = next(iter(cf.audit_logs.list(account_id=api.account_id)))
    assert last.actor.id == made.json()["result"]["id"] and last.resource.type == "dns_records"  # type: ignore[union-attr]


def test_automatic_rotation_is_audited_as_the_system(api) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from originlock.store.auto_rotation import LEAF_DAYS, rotate_due

    zone = api.zone("rotating.test")
    r = api.client.patch(f"{V4}/zones/{zone}/settings/aop_auto_rotation", json={"value": "on"}, headers=api.admin)
    assert r.status_code == 200, r.text
    with api.store.write() as conn:
        changes = rotate_due(conn, api.store.sealer, datetime.now(UTC) + timedelta(days=LEAF_DAYS - 1))
    assert changes and changes[0].issued
    cf = sdk(api.client, bearer(api.admin))
    newest = next(iter(cf.audit_logs.list(account_id=api.account_id)))
    assert newest.actor.type == "Cloudflare" and newest.actor.id is None  # type: ignore[union-attr]
    assert newest.interface == "originlock" and newest.resource.id in {changes[0].issued, *changes[0].deleted}  # type: ignore[union-attr]
