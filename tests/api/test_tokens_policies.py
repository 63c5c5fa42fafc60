"""Issue 14: tokens as Cloudflare has them, through the official SDK: policies with Cloudflare's permission
group ids and resources, permission_groups, get/update/delete/roll, verify, the same under
/accounts/{id}/tokens, and /user/tokens pagination that the SDK's auto-pager finishes."""

from __future__ import annotations

from typing import Any

import pytest
from cloudflare import Cloudflare, NotFoundError, PermissionDeniedError

from originlock.testing.sdk_client import sdk

V4 = "/client/v4"
ZONE_READ = "c8fed203ed3043cba015a93ad1616f1f"
DNS_READ = "82e64a83756745bbbb1c9c2701bf816b"
DNS_WRITE = "4755a26eedb94da69e1066d98aa820be"
SSL_READ = "7b7216b327b04b8fbc8f524e1f9b7531"
TOKENS_WRITE = "686d18d5ac6c441c867cbf6771e58a0a"


def _sdk(api: Any, headers: dict[str, str]) -> Cloudflare:
    token = headers["Authorization"].split()[1]
    return sdk(api.client, token)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _zone_policy(effect: str, groups: list[str], zone: str) -> Any:
    return {
        "effect": effect,
        "permission_groups": [{"id": g} for g in groups],
        "resources": {f"com.cloudflare.api.account.zone.{zone}": "*"},
    }


def _user_policy(group: str) -> Any:
    return {"effect": "allow", "permission_groups": [{"id": group}], "resources": {"com.cloudflare.api.user.me": "*"}}


def _status(api: Any, method: str, path: str, headers: dict[str, str], body: Any = None) -> int:
    return int(api.client.request(method, f"{V4}{path}", headers=headers, json=body).status_code)


def test_permission_groups_are_cloudflares(api: Any) -> None:
    cf = _sdk(api, api.admin)
    groups = {g.name: g for g in cf.user.tokens.permission_groups.list()}
    assert groups["DNS Write"].id == DNS_WRITE and groups["DNS Write"].scopes == ["com.cloudflare.api.account.zone"]
    assert groups["API Tokens Write"].id == TOKENS_WRITE and groups["API Tokens Write"].scopes == [
        "com.cloudflare.api.user"
    ]
    assert {"Zone Read", "SSL and Certificates Write", "Firewall Services Read", "Notifications Write"} <= set(groups)
    only = list(cf.user.tokens.permission_groups.list(name="DNS Read"))
    assert [g.id for g in only] == [DNS_READ]
    account_groups = list(cf.accounts.tokens.permission_groups.list(account_id=api.account_id))
    assert {g.id for g in account_groups} == {g.id for g in groups.values()}


def test_policies_are_what_is_enforced(api: Any) -> None:
    a, b = api.zone("a.test"), api.zone("b.test")
    cf = _sdk(api, api.admin)
    created = cf.user.tokens.create(
        name="dns reader of a",
        policies=[_zone_policy("allow", [DNS_READ, ZONE_READ], a)],
    )
    assert created is not None and created.value
    reader = _bearer(created.value)
    assert _status(api, "GET", f"/zones/{a}/dns_records", reader) == 200
    r = api.client.get(f"{V4}/zones/{b}/dns_records", headers=reader)
    assert r.status_code == 403 and "dns:read" in r.json()["errors"][0]["message"]
    assert (
        _status(api, "POST", f"/zones/{a}/dns_records", reader, {"type": "A", "name": "x", "content": "192.0.2.1"})
        == 403
    )
    assert _status(api, "GET", f"/zones/{a}/settings/ssl", reader) == 403
    assert [z.id for z in _sdk(api, reader).zones.list()] == [a]
    # A deny policy takes away what an allow policy gives, on the zones it names.
    account_wide: Any = {
        "effect": "allow",
        "permission_groups": [{"id": DNS_WRITE}],
        "resources": {f"com.cloudflare.api.account.{api.account_id}": "*"},
    }
    writer = cf.user.tokens.create(name="w", policies=[account_wide, _zone_policy("deny", [DNS_WRITE], b)])
    assert writer is not None and writer.value
    body = {"type": "A", "name": "y", "content": "192.0.2.2"}
    assert _status(api, "POST", f"/zones/{a}/dns_records", _bearer(writer.value), body) == 200
    assert _status(api, "POST", f"/zones/{b}/dns_records", _bearer(writer.value), body) == 403
    assert _status(api, "GET", f"/zones/{b}/dns_records", _bearer(writer.value)) == 200  # a deny is literal


def test_get_update_roll_delete_and_verify(api: Any) -> None:
    a = api.zone("a.test")
    cf = _sdk(api, api.admin)
    created = cf.user.tokens.create(
        name="t1",
        policies=[_zone_policy("allow", [DNS_READ], a)],
        condition={"request_ip": {"in": ["127.0.0.0/8"], "not_in": ["127.0.0.2/32"]}},
        expires_on="2099-01-01T00:00:00Z",
    )
    assert created is not None and created.id and created.value
    got = cf.user.tokens.get(created.id)
    assert got is not None and got.name == "t1" and got.status == "active"
    assert got.expires_on is not None and got.expires_on.year == 2099
    assert got.condition is not None and got.condition.request_ip is not None
    assert got.condition.request_ip.in_ == ["127.0.0.0/8"]
    assert got.policies is not None
    (policy,) = got.policies
    assert policy.effect == "allow" and [g.id for g in policy.permission_groups] == [DNS_READ]
    assert policy.resources == {f"com.cloudflare.api.account.zone.{a}": "*"}
    # What Terraform does: PUT back what it read, with a change.
    updated = cf.user.tokens.update(
        created.id,
        name="t1 renamed",
        policies=[_zone_policy("allow", [DNS_READ, SSL_READ], a)],
        expires_on="2099-01-01T00:00:00Z",
    )
    assert updated is not None and updated.name == "t1 renamed"
    old = _bearer(created.value)
    assert _status(api, "GET", f"/zones/{a}/settings/ssl", old) == 200  # the new policy applies at once
    verified = api.client.get(f"{V4}/user/tokens/verify", headers=old).json()
    assert verified["result"]["id"] == created.id and verified["result"]["status"] == "active"
    assert verified["messages"][0]["message"] == "This API Token is valid and active"
    # Disable, then enable again.
    disabled = cf.user.tokens.update(
        created.id, name="t1", policies=[_zone_policy("allow", [DNS_READ], a)], status="disabled"
    )
    assert disabled is not None and disabled.status == "disabled"
    assert _status(api, "GET", "/user/tokens/verify", old) == 401
    cf.user.tokens.update(created.id, name="t1", policies=[_zone_policy("allow", [DNS_READ], a)], status="active")
    # Roll: a new secret, the old one stops working.
    secret = cf.user.tokens.value.update(created.id)
    assert isinstance(secret, str) and len(secret) == 40 and secret != created.value
    assert _status(api, "GET", "/user/tokens/verify", old) == 401
    assert _status(api, "GET", "/user/tokens/verify", _bearer(secret)) == 200
    cf.user.tokens.delete(created.id)
    with pytest.raises(NotFoundError):
        cf.user.tokens.get(created.id)
    assert _status(api, "GET", "/user/tokens/verify", _bearer(secret)) == 401


def test_sdk_auto_pager_terminates(api: Any) -> None:
    for i in range(12):
        api.client.post(f"{V4}/user/tokens", headers=api.admin, json={"name": f"p{i}", "permissions": ["zone:read"]})
    cf = _sdk(api, api.admin)
    listed = list(cf.user.tokens.list(per_page=5))  # 13 tokens: three full pages, then an empty one
    assert len(listed) == 13 and len({t.id for t in listed}) == 13
    page = api.client.get(f"{V4}/user/tokens", params={"page": 3, "per_page": 5}, headers=api.admin).json()
    assert len(page["result"]) == 3
    assert page["result_info"] == {"page": 3, "per_page": 5, "count": 3, "total_count": 13, "total_pages": 3}
    assert len(list(cf.accounts.tokens.list(account_id=api.account_id, per_page=5))) == 13


def test_account_tokens(api: Any) -> None:
    a = api.zone("a.test")
    cf = _sdk(api, api.admin)
    created = cf.accounts.tokens.create(
        account_id=api.account_id, name="acct", policies=[_zone_policy("allow", [ZONE_READ], a)]
    )
    assert created is not None and created.id and created.value
    assert cf.accounts.tokens.get(created.id, account_id=api.account_id).name == "acct"  # type: ignore[union-attr]
    verified = _sdk(api, _bearer(created.value)).accounts.tokens.verify(account_id=api.account_id)
    assert verified is not None and verified.id == created.id and verified.status == "active"
    cf.accounts.tokens.update(
        created.id, account_id=api.account_id, name="acct2", policies=[_zone_policy("allow", [ZONE_READ], a)]
    )
    secret = cf.accounts.tokens.value.update(created.id, account_id=api.account_id)
    assert _status(api, "GET", f"/zones/{a}", _bearer(secret)) == 200
    cf.accounts.tokens.delete(created.id, account_id=api.account_id)
    with pytest.raises(NotFoundError):
        cf.accounts.tokens.get(created.id, account_id=api.account_id)
    with pytest.raises(NotFoundError):
        cf.accounts.tokens.list(account_id="0" * 32)


def test_policy_tokens_cannot_widen(api: Any) -> None:
    a, b = api.zone("a.test"), api.zone("b.test")
    cf = _sdk(api, api.admin)
    manager = cf.user.tokens.create(
        name="manager of a",
        policies=[
            _zone_policy("allow", [DNS_WRITE], a),
            {
                "effect": "allow",
                "permission_groups": [{"id": TOKENS_WRITE}],
                "resources": {"com.cloudflare.api.user.me": "*"},
            },
        ],
    )
    assert manager is not None and manager.value
    scoped = _sdk(api, _bearer(manager.value))
    child = scoped.user.tokens.create(name="child", policies=[_zone_policy("allow", [DNS_READ], a)])
    assert child is not None and child.id
    for policies in (
        [_zone_policy("allow", [DNS_WRITE], b)],
        [_zone_policy("allow", [SSL_READ], a)],
        [
            {
                "effect": "allow",
                "permission_groups": [{"id": DNS_WRITE}],
                "resources": {"com.cloudflare.api.account.zone.*": "*"},
            }
        ],
    ):
        with pytest.raises(PermissionDeniedError):
            scoped.user.tokens.create(name="wider", policies=policies)  # type: ignore[arg-type]
    # Nor can it widen a token it manages, or itself.
    with pytest.raises(PermissionDeniedError):
        scoped.user.tokens.update(child.id, name="child", policies=[_zone_policy("allow", [DNS_WRITE], b)])
    verified = cf.user.tokens.verify()
    assert verified is not None
    admin_id = verified.id
    with pytest.raises(NotFoundError):
        scoped.user.tokens.get(admin_id)
    with pytest.raises(NotFoundError):
        scoped.user.tokens.value.update(admin_id)


def test_bad_policies_are_400(api: Any) -> None:
    a = api.zone("a.test")
    cases = [
        (
            [
                {
                    "effect": "allow",
                    "permission_groups": [{"id": "f" * 32}],
                    "resources": {f"com.cloudflare.api.account.zone.{a}": "*"},
                }
            ],
            "unknown permission group",
        ),
        ([{"effect": "maybe", "permission_groups": [{"id": DNS_READ}], "resources": {}}], "effect"),
        ([_zone_policy("allow", [DNS_READ], "0" * 32)], "do not exist"),
        (
            [{"effect": "allow", "permission_groups": [{"id": DNS_READ}], "resources": {"com.example.thing": "*"}}],
            "unknown resource",
        ),
        (
            [
                {
                    "effect": "allow",
                    "permission_groups": [{"id": DNS_READ}],
                    "resources": {"com.cloudflare.api.account.nope": "*"},
                }
            ],
            "does not exist",
        ),
        ([], "non-empty"),
    ]
    for policies, words in cases:
        r = api.client.post(f"{V4}/user/tokens", headers=api.admin, json={"name": "x", "policies": policies})
        assert r.status_code == 400 and words in r.json()["errors"][0]["message"], (policies, r.text)
