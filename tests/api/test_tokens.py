"""API tokens: hashed at rest, permissions, zone scope; bad and missing tokens."""

from __future__ import annotations

from sqlalchemy import select

from originlock.store import schema

V4 = "/client/v4"


def _token(api, permissions: list[str], zones: list[str] | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    r = api.client.post(
        f"{V4}/user/tokens", json={"name": "t", "permissions": permissions, "zones": zones}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['result']['value']}"}


def test_missing_malformed_and_bad_tokens(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.get(f"{V4}/zones")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == 9106
    r = api.client.get(f"{V4}/zones", headers={"Authorization": "Basic abc"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 6111
    r = api.client.get(f"{V4}/zones", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = api.client.get(f"{V4}/user/tokens/verify", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_zone_scoped_token_gets_403_on_other_zone(api) -> None:  # type: ignore[no-untyped-def]
    a, b = api.zone("a.example.test"), api.zone("b.example.test")
    scoped = _token(api, ["ssl:edit", "zone:read"], [a])
    assert api.client.get(f"{V4}/zones/{a}/settings/ssl", headers=scoped).status_code == 200
    r = api.client.get(f"{V4}/zones/{b}/settings/ssl", headers=scoped)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000
    r = api.client.patch(f"{V4}/zones/{b}/settings/ssl", json={"value": "off"}, headers=scoped)
    assert r.status_code == 403
    assert api.client.get(f"{V4}/zones/{b}/settings/ssl", headers=api.admin).json()["result"]["value"] == "full"
    listed = api.client.get(f"{V4}/zones", headers=scoped).json()["result"]
    assert [z["id"] for z in listed] == [a]


def test_permissions_enforced(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    reader = _token(api, ["zone:read", "ssl:read"])
    assert api.client.get(f"{V4}/zones/{zone}/origin_tls_client_auth", headers=reader).status_code == 200
    r = api.client.put(f"{V4}/zones/{zone}/origin_tls_client_auth/settings", json={"enabled": True}, headers=reader)
    assert r.status_code == 403
    r = api.client.post(
        f"{V4}/zones/{zone}/dns_records", json={"type": "A", "name": "x", "content": "1.2.3.4"}, headers=reader
    )
    assert r.status_code == 403
    assert api.client.get(f"{V4}/user/tokens", headers=reader).status_code == 403


def test_tokens_stored_hashed_and_revocable(api) -> None:  # type: ignore[no-untyped-def]
    headers = _token(api, ["zone:read"])
    secret = headers["Authorization"].split()[1]
    with api.store.read() as conn:
        hashes = [r.token_hash for r in conn.execute(select(schema.api_tokens))]
    assert secret not in hashes and all(len(h) == 64 for h in hashes)
    verify = api.client.get(f"{V4}/user/tokens/verify", headers=headers).json()["result"]
    assert verify["status"] == "active"
    listed = api.client.get(f"{V4}/user/tokens", headers=api.admin).json()["result"]
    assert secret not in str(listed)
    api.client.delete(f"{V4}/user/tokens/{verify['id']}", headers=api.admin)
    assert api.client.get(f"{V4}/zones", headers=headers).status_code == 401


def test_unknown_permission_rejected(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.post(f"{V4}/user/tokens", json={"name": "t", "permissions": ["root"]}, headers=api.admin)
    assert r.status_code == 400 and "unknown permissions" in r.json()["errors"][0]["message"]
