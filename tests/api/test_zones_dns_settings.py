"""Zones, DNS records, settings and pagination: the v4 shapes the SDK and Terraform rely on."""

from __future__ import annotations

V4 = "/client/v4"


def test_zone_crud_and_pagination_past_the_end(api) -> None:  # type: ignore[no-untyped-def]
    ids = [api.zone(f"z{i}.example.test") for i in range(7)]
    r = api.client.get(f"{V4}/zones", params={"per_page": 5, "page": 1}, headers=api.admin)
    info = r.json()["result_info"]
    assert info == {"page": 1, "per_page": 5, "count": 5, "total_count": 7, "total_pages": 2}
    r = api.client.get(f"{V4}/zones", params={"per_page": 5, "page": 2}, headers=api.admin)
    assert r.json()["result_info"]["count"] == 2
    r = api.client.get(f"{V4}/zones", params={"per_page": 5, "page": 3}, headers=api.admin)
    assert r.status_code == 200 and r.json()["result"] == []
    zone = api.client.get(f"{V4}/zones/{ids[0]}", headers=api.admin).json()["result"]
    assert zone["name"] == "z0.example.test" and len(zone["id"]) == 32 and zone["status"] == "active"
    assert zone["account"]["id"] == api.account_id
    r = api.client.patch(f"{V4}/zones/{ids[0]}", json={"paused": True}, headers=api.admin)
    assert r.json()["result"]["paused"] is True
    assert api.client.delete(f"{V4}/zones/{ids[0]}", headers=api.admin).json()["result"] == {"id": ids[0]}
    assert api.client.get(f"{V4}/zones/{ids[0]}", headers=api.admin).status_code == 404
    by_name = api.client.get(f"{V4}/zones", params={"name": "z3.example.test"}, headers=api.admin).json()["result"]
    assert [z["id"] for z in by_name] == [ids[3]]


def test_duplicate_and_invalid_zone(api) -> None:  # type: ignore[no-untyped-def]
    api.zone("dup.example.test")
    r = api.client.post(
        f"{V4}/zones", json={"name": "dup.example.test", "account": {"id": api.account_id}}, headers=api.admin
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 1061
    r = api.client.post(
        f"{V4}/zones", json={"name": "not a name", "account": {"id": api.account_id}}, headers=api.admin
    )
    assert r.status_code == 400


def test_dns_records(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    base = f"{V4}/zones/{zone}/dns_records"
    r = api.client.post(
        base,
        json={"type": "A", "name": "app", "content": "127.0.0.1", "ttl": 1, "proxied": True, "comment": "origin"},
        headers=api.admin,
    )
    assert r.status_code == 200, r.text
    rec = r.json()["result"]
    assert (rec["name"], rec["type"], rec["content"], rec["proxied"], rec["ttl"], rec["comment"]) == (
        "app.example.test",
        "A",
        "127.0.0.1",
        True,
        1,
        "origin",
    )
    bad = [
        ({"type": "A", "name": "x", "content": "::1"}, "IPv4"),
        ({"type": "AAAA", "name": "x", "content": "1.2.3.4"}, "IPv6"),
        ({"type": "MX", "name": "x", "content": "a.b"}, "priority is required"),
        ({"type": "BOGUS", "name": "x", "content": "a.b"}, "not a DNS record type"),
        ({"type": "TXT", "name": "x", "content": "v", "proxied": True}, "cannot be proxied"),
        ({"type": "A", "name": "x", "content": "1.2.3.4", "ttl": 5}, "ttl"),
        ({"type": "CNAME", "name": "app", "content": "other.test"}, "already exists"),
        ({"type": "A", "name": "app", "content": "127.0.0.1", "proxied": True}, "identical"),
        ({"type": "A", "name": "x", "content": "1.2.3.4", "proxied": "yes"}, "proxied"),
    ]
    for body, words in bad:
        r = api.client.post(base, json=body, headers=api.admin)
        assert r.status_code == 400, (body, r.text)
        assert words.lower() in str(r.json()["errors"]).lower(), (body, r.text)
    r = api.client.patch(f"{base}/{rec['id']}", json={"content": "127.0.0.2"}, headers=api.admin)
    assert r.json()["result"]["content"] == "127.0.0.2" and r.json()["result"]["proxied"] is True
    listing = api.client.get(base, params={"name": "app.example.test"}, headers=api.admin).json()
    assert [x["id"] for x in listing["result"]] == [rec["id"]]
    assert api.client.get(base, params={"page": 2}, headers=api.admin).json()["result"] == []
    assert api.client.delete(f"{base}/{rec['id']}", headers=api.admin).json()["result"] == {"id": rec["id"]}
    assert api.client.get(f"{base}/{rec['id']}", headers=api.admin).status_code == 404


def test_settings(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    base = f"{V4}/zones/{zone}/settings"
    got = api.client.get(f"{base}/tls_client_auth", headers=api.admin).json()["result"]
    assert got == {"id": "tls_client_auth", "value": "off", "editable": True, "modified_on": None}
    r = api.client.patch(f"{base}/ssl", json={"value": "strict"}, headers=api.admin)
    assert r.json()["result"]["id"] == "ssl" and r.json()["result"]["value"] == "strict"
    assert r.json()["result"]["modified_on"].endswith("Z")
    r = api.client.patch(f"{base}/ssl", json={"value": "maximum"}, headers=api.admin)
    assert r.status_code == 400 and r.json()["errors"][0] == {
        "code": 1007,
        "message": 'Invalid value for zone setting ssl: allowed values are "off", "flexible", "full", "strict", '
        '"origin_pull"',
    }
    r = api.client.patch(f"{base}/nonsense", json={"value": "on"}, headers=api.admin)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 1006
    assert r.json()["errors"][0]["message"] == "Unrecognized zone setting name: nonsense"
    every = api.client.get(base, headers=api.admin).json()["result"]
    from originlock.store.settings import SETTINGS

    assert {s["id"] for s in every} == set(SETTINGS)
    assert {"ssl", "tls_client_auth", "min_tls_version", "always_use_https"} <= set(SETTINGS)
    # A failed PATCH left the previous value alone.
    assert api.client.get(f"{base}/ssl", headers=api.admin).json()["result"]["value"] == "strict"


def test_unknown_headers_ignored_and_unknown_route(api) -> None:  # type: ignore[no-untyped-def]
    headers = {**api.admin, "X-Stainless-Lang": "python", "api-version": "2026-11-27"}
    assert api.client.get(f"{V4}/zones", headers=headers).status_code == 200
    r = api.client.get(f"{V4}/nothing/here", headers=api.admin)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == 7003


def test_openapi_document_served(api) -> None:  # type: ignore[no-untyped-def]
    doc = api.client.get(f"{V4}/openapi.json").json()
    assert "/client/v4/zones/{zone_id}/origin_tls_client_auth/hostnames" in doc["paths"]


def test_out_of_range_numbers_are_400_not_500(api) -> None:  # type: ignore[no-untyped-def]
    # Found by schemathesis: a huge page overflowed SQLite's OFFSET.
    r = api.client.get(f"{V4}/zones", params={"page": 52007148701819205893226496}, headers=api.admin)
    assert r.status_code == 400 and "page" in r.json()["errors"][0]["message"]
    zone = api.zone()
    r = api.client.post(
        f"{V4}/zones/{zone}/dns_records",
        headers=api.admin,
        json={"type": "A", "name": "x", "content": "1.2.3.4", "ttl": 2**40},
    )
    assert r.status_code == 400
