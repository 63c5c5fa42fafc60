"""The HTTP calls Terraform provider v5 makes for each resource this API serves, replayed in order:
create -> read -> update -> read -> import -> delete -> read (404: the provider drops the resource from state).

Taken from the provider's generated resources (internal/services/<name>/resource.go): Create and Update send
the whole model as JSON (``MarshalJSON`` / ``MarshalJSONForUpdate``) and decode ``result`` back into state;
Read and ImportState are the resource's GET; a 404 on Read removes the resource. ``cloudflare_zone_setting``
has no Delete (the setting stays) and ``data cloudflare_account`` only reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from originlock.testing.upload_pki import UploadPki, leaf_pems

V4 = "/client/v4"
# Store-independent behaviour (the API's shapes): one backend is enough; tests/store and the DNS, audit and
# paging tests run both.
pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@dataclass
class Replay:
    """One resource's lifecycle: paths relative to /client/v4, ``{id}`` filled from the create answer."""

    collection: str
    create: dict[str, Any]
    update: dict[str, Any]
    update_method: str
    #: Fields of the read-back result that must equal what was sent.
    expect_created: dict[str, Any]
    expect_updated: dict[str, Any]
    create_method: str = "POST"
    item: str = "{collection}/{id}"
    deletable: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _subset(result: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        assert result.get(key) == value, (key, result.get(key), value)


def _run(api, replay: Replay) -> str:  # type: ignore[no-untyped-def]
    h = api.admin
    r = api.client.request(replay.create_method, f"{V4}{replay.collection}", json=replay.create, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["errors"] == []
    created = body["result"]
    item = replay.item.format(collection=replay.collection, id=created["id"])
    read = api.client.get(f"{V4}{item}", headers=h)
    assert read.status_code == 200, read.text
    _subset(read.json()["result"], replay.expect_created)
    r = api.client.request(replay.update_method, f"{V4}{item}", json=replay.update, headers=h)
    assert r.status_code == 200, r.text
    read = api.client.get(f"{V4}{item}", headers=h).json()["result"]
    _subset(read, replay.expect_updated)
    # terraform import <ids>: the same GET, decoded into a fresh state, must give the same object.
    imported = api.client.get(f"{V4}{item}", headers=h).json()["result"]
    assert imported == read
    if replay.deletable:
        r = api.client.delete(f"{V4}{item}", headers=h)
        assert r.status_code == 200, r.text
        gone = api.client.get(f"{V4}{item}", headers=h)
        assert gone.status_code == 404 and gone.json()["success"] is False, gone.text
        # A second destroy (state out of date): still a clean 404, never a 5xx.
        assert api.client.delete(f"{V4}{item}", headers=h).status_code == 404
    return str(created["id"])


def test_cloudflare_zone(api) -> None:  # type: ignore[no-untyped-def]
    _run(
        api,
        Replay(
            collection="/zones",
            create={"account": {"id": api.account_id}, "name": "tf-zone.test", "type": "full"},
            update={"paused": True, "type": "full", "vanity_name_servers": []},
            update_method="PATCH",
            expect_created={"name": "tf-zone.test", "status": "active", "paused": False},
            expect_updated={"paused": True},
        ),
    )


def test_cloudflare_dns_record(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("tf-dns.test")
    full = {
        "name": "mail.tf-dns.test",
        "type": "MX",
        "content": "mx1.tf-dns.test",
        "priority": 10,
        "ttl": 3600,
        "proxied": False,
        "comment": "primary",
        "tags": ["owner:tf"],
        "settings": {},
    }
    _run(
        api,
        Replay(
            collection=f"/zones/{zone}/dns_records",
            create=full,
            update={**full, "content": "mx2.tf-dns.test", "priority": 20, "tags": []},
            update_method="PUT",
            expect_created={"content": "mx1.tf-dns.test", "priority": 10, "tags": ["owner:tf"], "comment": "primary"},
            expect_updated={"content": "mx2.tf-dns.test", "priority": 20, "tags": []},
        ),
    )
    srv = {
        "name": "_sip._tcp.tf-dns.test",
        "type": "SRV",
        "data": {"priority": 1, "weight": 2, "port": 5060, "target": "sip.tf-dns.test"},
        "ttl": 1,
    }
    _run(
        api,
        Replay(
            collection=f"/zones/{zone}/dns_records",
            create=srv,
            update={**srv, "data": {**srv["data"], "port": 5061}},
            update_method="PUT",
            expect_created={"content": "2 5060 sip.tf-dns.test", "priority": 1},
            expect_updated={"content": "2 5061 sip.tf-dns.test"},
        ),
    )


def test_cloudflare_zone_setting(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("tf-setting.test")
    for setting_id, first, second in (
        ("always_online", "on", "off"),
        ("browser_cache_ttl", 7200, 14400),
        ("security_header", {"strict_transport_security": {"enabled": True, "max_age": 300}}, None),
    ):
        path = f"{V4}/zones/{zone}/settings/{setting_id}"
        # Create and Update are both PATCH with {"value": ...}; Read and import are GET.
        r = api.client.patch(path, json={"setting_id": setting_id, "value": first}, headers=api.admin)
        assert r.status_code == 200 and r.json()["result"]["id"] == setting_id, r.text
        if second is not None:
            r = api.client.patch(path, json={"value": second}, headers=api.admin)
            assert r.json()["result"]["value"] == second
        read = api.client.get(path, headers=api.admin).json()["result"]
        assert read["editable"] is True and read["modified_on"]
    # The zone is deleted outside Terraform: Read gets a 404 and drops the setting from state.
    api.client.delete(f"{V4}/zones/{zone}", headers=api.admin)
    assert api.client.get(f"{V4}/zones/{zone}/settings/always_online", headers=api.admin).status_code == 404


def test_cloudflare_custom_ssl(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("tf-cert.test")
    cert, key = leaf_pems(pki.server("www.tf-cert.test"))
    _run(
        api,
        Replay(
            collection=f"/zones/{zone}/custom_certificates",
            create={"certificate": cert, "private_key": key, "bundle_method": "ubiquitous", "type": "sni_custom"},
            update={"bundle_method": "force"},
            update_method="PATCH",
            expect_created={"hosts": ["www.tf-cert.test"], "status": "active"},
            expect_updated={"bundle_method": "force"},
        ),
    )


def test_cloudflare_notification_policy_webhooks(api) -> None:  # type: ignore[no-untyped-def]
    _run(
        api,
        Replay(
            collection=f"/accounts/{api.account_id}/alerting/v3/destinations/webhooks",
            create={"name": "tf", "url": "https://hooks.example.test/a", "secret": "s"},
            update={"name": "tf2", "url": "https://hooks.example.test/b", "secret": "s"},
            update_method="PUT",
            expect_created={"name": "tf", "url": "https://hooks.example.test/a"},
            expect_updated={"name": "tf2", "url": "https://hooks.example.test/b"},
        ),
    )


def test_data_cloudflare_account_and_account_update(api) -> None:  # type: ignore[no-untyped-def]
    path = f"{V4}/accounts/{api.account_id}"
    read = api.client.get(path, headers=api.admin).json()["result"]
    assert read["id"] == api.account_id and read["type"] == "standard" and "settings" in read
    r = api.client.put(path, json={"name": "tf account", "type": "standard", "settings": {}}, headers=api.admin)
    assert r.status_code == 200 and r.json()["result"]["name"] == "tf account"
    assert api.client.get(f"{V4}/accounts/{'0' * 32}", headers=api.admin).status_code == 404
