"""The official `cloudflare` SDK (5.x) manages a whole zone on `originlock serve`: list filters and auto-paging,
every DNS record type, batch, BIND export/import, zone settings, accounts, custom certificate priorities,
alerting, and the audit log of all of it. One real process over HTTP; tests/api covers each family in depth."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from cloudflare import Cloudflare

from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki, leaf_pems


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = start_serve(tmp_path_factory.mktemp("families") / "data")
    yield proc
    assert proc.stop() == 0, proc.output()


def test_zone_families_through_the_sdk(served: ServeProcess, pki: UploadPki) -> None:
    cf = Cloudflare(api_token=served.token, base_url=f"{served.api_url}/client/v4", max_retries=0)
    api = f"{served.api_url}/client/v4"
    h = {"Authorization": f"Bearer {served.token}"}
    account = next(iter(cf.accounts.list()))
    tag = secrets.token_hex(3)
    names = [f"{p}-{tag}.test" for p in ("shop", "blog", "shop-eu", "docs", "api", "cdn")]
    ids = {n: cf.zones.create(account={"id": account.id}, name=n, type="full").id for n in names}  # type: ignore[union-attr]

    # Lists: auto-paging stops, filters in Cloudflare's syntax.
    assert {z.id for z in cf.zones.list(per_page=5)} >= set(ids.values())
    assert sorted(z.name for z in cf.zones.list(name="starts_with:shop")) == sorted(
        [f"shop-eu-{tag}.test", f"shop-{tag}.test"]
    )
    assert list(cf.zones.list(status="pending")) == []
    zone = ids[names[0]]

    # DNS: several types, tags, filters, batch, export and import.
    cf.dns.records.create(
        zone_id=zone, type="A", name="www", content="127.0.0.1", ttl=1, proxied=True, tags=["env:prod"]
    )
    cf.dns.records.create(zone_id=zone, type="MX", name="@", content=f"mx.{names[0]}", priority=10, ttl=300)
    cf.dns.records.create(zone_id=zone, type="TXT", name="@", content="v=spf1 -all", ttl=1)
    cf.dns.records.create(
        zone_id=zone, type="CAA", name="@", ttl=1, data={"flags": 0, "tag": "issue", "value": "letsencrypt.org"}
    )
    cf.dns.records.create(
        zone_id=zone,
        type="SRV",
        name="_sip._tcp",
        ttl=1,
        data={"priority": 5, "weight": 1, "port": 5060, "target": f"sip.{names[0]}"},
    )
    assert [r.type for r in cf.dns.records.list(zone_id=zone, tag={"exact": "env:prod"})] == ["A"]
    assert [r.type for r in cf.dns.records.list(zone_id=zone, content={"startswith": "v=spf1"})] == ["TXT"]
    assert len(list(cf.dns.records.list(zone_id=zone, per_page=5))) == 5
    out = cf.dns.records.batch(
        zone_id=zone,
        posts=[{"type": "AAAA", "name": "v6", "content": "::1", "ttl": 1}],  # type: ignore[list-item]
    )
    assert out is not None and out.posts is not None and out.posts[0].content == "::1"
    exported = cf.dns.records.export(zone_id=zone)
    copy = ids[names[1]]
    imported = cf.dns.records.import_(zone_id=copy, file=exported.replace(names[0], names[1]))
    assert imported is not None and imported.recs_added == 6
    assert {r.type for r in cf.dns.records.list(zone_id=copy)} == {"A", "AAAA", "MX", "TXT", "CAA", "SRV"}

    # Settings: enforced and stored ones, one at a time and in bulk.
    assert cf.zones.settings.edit("always_online", zone_id=zone, value="on").value == "on"  # type: ignore[union-attr]
    assert cf.zones.settings.get("websockets", zone_id=zone).value == "on"  # type: ignore[union-attr]
    bulk = httpx.patch(
        f"{api}/zones/{zone}/settings",
        json={"items": [{"id": "ssl", "value": "strict"}, {"id": "http3", "value": "off"}]},
        headers=h,
    )
    assert bulk.status_code == 200 and [s["value"] for s in bulk.json()["result"]] == ["strict", "off"]

    # Accounts, custom certificate priorities, alerting.
    assert cf.accounts.get(account_id=account.id).id == account.id  # type: ignore[union-attr]
    certs = []
    for host in ("a", "b"):
        cert, key = leaf_pems(pki.server(f"{host}.{names[0]}"))
        certs.append(cf.custom_certificates.create(zone_id=zone, certificate=cert, private_key=key).id)  # type: ignore[union-attr]
    ordered = list(
        cf.custom_certificates.prioritize.update(zone_id=zone, certificates=[{"id": certs[1], "priority": 50}])
    )
    assert ordered[0].id == certs[1]
    assert "custom_ssl_certificate_event_type" in {
        a.type for group in (cf.alerting.available_alerts.list(account_id=account.id) or {}).values() for a in group
    }
    hook = cf.alerting.destinations.webhooks.create(account_id=account.id, name="a", url="https://hooks.example.test/")
    cf.alerting.destinations.webhooks.update(
        hook.id, account_id=account.id, name="b", url="https://hooks.example.test/b"
    )  # type: ignore[union-attr, arg-type]
    assert list(cf.alerting.history.list(account_id=account.id)) == []

    # An account-level custom ruleset deployed to this zone by name: the edge enforces it before any origin.
    custom = cf.rulesets.create(
        account_id=account.id,
        kind="custom",
        name="no admin",
        phase="http_request_firewall_custom",
        rules=[{"action": "block", "expression": 'http.request.uri.path eq "/admin"'}],
    )
    custom_id = custom["id"] if isinstance(custom, dict) else custom.id
    cf.rulesets.phases.update(
        "http_request_firewall_custom",
        account_id=account.id,
        rules=[
            {"action": "execute", "action_parameters": {"id": custom_id}, "expression": f'cf.zone.name eq "{names[0]}"'}
        ],
    )
    edge = f"http://127.0.0.1:{served.http_port}"
    deadline = time.monotonic() + 5
    while True:  # the change reaches the edge within 100 ms; allow for a loaded machine
        blocked = httpx.get(f"{edge}/admin", headers={"Host": f"www.{names[0]}"})
        if blocked.status_code == 403 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert blocked.status_code == 403, blocked.text
    assert httpx.get(f"{edge}/other", headers={"Host": f"www.{names[0]}"}).status_code != 403
    cf.dns.records.create(zone_id=copy, type="A", name="app", content="127.0.0.1", ttl=1, proxied=True)
    time.sleep(0.3)
    assert httpx.get(f"{edge}/admin", headers={"Host": f"app.{names[1]}"}).status_code != 403

    # The audit log saw every write, newest first.
    entries = list(cf.audit_logs.list(account_id=account.id, per_page=10))
    assert entries[0].resource.type == "dns_records" and entries[0].action.type == "create"  # type: ignore[union-attr]
    assert any(e.resource.type == "webhooks" and e.action.type == "update" for e in entries)  # type: ignore[union-attr]
    assert sum(1 for e in entries if e.resource.type == "zones") == len(names)  # type: ignore[union-attr]
