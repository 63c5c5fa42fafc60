"""Account-level rulesets through the SDK: a custom ruleset deployed from the account entry point to the zones its
``cf.zone.name`` expression selects, and what the snapshot then evaluates for each zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cloudflare import BadRequestError, PermissionDeniedError

from originlock.store.compile import compile_snapshot
from originlock.testing.sdk_client import bearer, sdk
from originlock.waf import Phase, RequestFields, evaluate_request

V4 = "/client/v4"

# Store-independent behaviour (the API's shapes): one backend is enough; the stores' own tests cover both.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
PHASE = "http_request_firewall_custom"


def _f(obj: Any, key: str) -> Any:
    """The SDK 5.9 hands some ruleset answers back as plain dicts (its response type is a union)."""
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def _verdicts(api, *cases: tuple[str, str, str]) -> list[str | None]:  # type: ignore[no-untyped-def]
    """The custom-phase action for each (zone id, zone name, path), from one freshly compiled snapshot."""
    snapshot = compile_snapshot(api.store, datetime.now(UTC))
    out = []
    for zone_id, zone_name, path in cases:
        extra = {"cf.zone.name": zone_name.encode()}
        request = RequestFields(method="GET", host=f"www.{zone_name}", path=path, extra=extra)
        verdict = evaluate_request(request, snapshot.waf.get(zone_id, {}))
        out.append(verdict.action.value if verdict.action is not None else None)
    return out


def test_custom_ruleset_deployed_from_the_account_entrypoint(api) -> None:  # type: ignore[no-untyped-def]
    cf = sdk(api.client, bearer(api.admin))
    account = api.account_id
    a, b = api.zone("a-site.test"), api.zone("b-site.test")
    custom = cf.rulesets.create(
        account_id=account,
        kind="custom",
        name="block admin",
        phase=PHASE,
        rules=[{"action": "block", "expression": 'http.request.uri.path eq "/admin"', "description": "no admin"}],
    )
    assert (_f(custom, "kind"), _f(custom, "version"), len(_f(custom, "rules"))) == ("custom", "1", 1)
    custom_id = _f(custom, "id")
    entry = cf.rulesets.phases.update(
        PHASE,
        account_id=account,
        rules=[
            {
                "action": "execute",
                "action_parameters": {"id": custom_id},
                "expression": 'cf.zone.name eq "a-site.test"',
            }
        ],
    )
    assert _f(entry, "kind") == "root" and _f(_f(entry, "rules")[0], "action") == "execute"
    entry_id = _f(entry, "id")
    assert _f(cf.rulesets.phases.get(PHASE, account_id=account), "id") == entry_id
    # Deployed to a-site only; b-site and other paths pass.
    assert _verdicts(api, (a, "a-site.test", "/admin"), (a, "a-site.test", "/"), (b, "b-site.test", "/admin")) == [
        "block",
        None,
        None,
    ]
    # The zone's own rules still run, after the account's.
    api.client.put(
        f"{V4}/zones/{b}/rulesets/phases/{PHASE}/entrypoint",
        json={"rules": [{"action": "block", "expression": 'http.request.uri.path eq "/zone-only"'}]},
        headers=api.admin,
    )
    assert _verdicts(api, (b, "b-site.test", "/zone-only")) == ["block"]

    # Rules, versions, listing.
    added = cf.rulesets.rules.create(
        custom_id, account_id=account, action="block", expression='http.request.uri.path eq "/wp-login.php"'
    )
    assert _f(added, "version") == "2" and len(_f(added, "rules")) == 2
    assert _verdicts(api, (a, "a-site.test", "/wp-login.php")) == ["block"]
    assert [_f(v, "version") for v in cf.rulesets.versions.list(custom_id, account_id=account)] == ["2", "1"]
    assert {_f(r, "id") for r in cf.rulesets.list(account_id=account)} == {custom_id, entry_id}
    first = _f(added, "rules")[0]
    edited = cf.rulesets.rules.edit(
        _f(first, "id"), ruleset_id=custom_id, account_id=account, action="log", expression=_f(first, "expression")
    )
    assert _f(_f(edited, "rules")[0], "action") == "log"
    assert _verdicts(api, (a, "a-site.test", "/admin")) == [None]  # logged, not blocked
    cf.rulesets.versions.delete("1", ruleset_id=custom_id, account_id=account)
    assert [_f(v, "version") for v in cf.rulesets.versions.list(custom_id, account_id=account)] == ["3", "2"]

    # A custom ruleset still executed cannot go; an execute rule must name one and select zones.
    with pytest.raises(BadRequestError):
        cf.rulesets.delete(custom_id, account_id=account)
    r = api.client.put(
        f"{V4}/accounts/{account}/rulesets/phases/{PHASE}/entrypoint",
        json={"rules": [{"action": "execute", "action_parameters": {"id": custom_id}, "expression": "true"}]},
        headers=api.admin,
    )
    assert r.status_code == 400 and r.json()["errors"][0]["source"]["pointer"] == "/rules/0/expression"
    r = api.client.put(
        f"{V4}/accounts/{account}/rulesets/phases/{PHASE}/entrypoint",
        json={
            "rules": [{"action": "execute", "action_parameters": {"id": "f" * 32}, "expression": 'cf.zone.name eq "x"'}]
        },
        headers=api.admin,
    )
    assert r.status_code == 400 and "action_parameters/id" in r.json()["errors"][0]["source"]["pointer"]
    cf.rulesets.phases.update(PHASE, account_id=account, rules=[])
    cf.rulesets.delete(custom_id, account_id=account)
    assert _verdicts(api, (a, "a-site.test", "/wp-login.php")) == [None]


@SQLITE_ONLY
def test_zone_scoped_tokens_cannot_touch_account_rulesets(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("scope.test")
    made = api.client.post(
        f"{V4}/user/tokens", json={"name": "z", "permissions": ["firewall:edit"], "zones": [zone]}, headers=api.admin
    )
    scoped = sdk(api.client, made.json()["result"]["value"])
    with pytest.raises(PermissionDeniedError):
        scoped.rulesets.create(account_id=api.account_id, kind="custom", name="x", phase=PHASE, rules=[])
    assert Phase(PHASE) is Phase.HTTP_REQUEST_FIREWALL_CUSTOM


def test_the_edge_gives_rules_the_zone_name() -> None:
    """cf.zone.name is what account entry points select zones by: the WAF phase fills it from the route."""
    from originlock.pipeline import RequestContext
    from originlock.pipeline.builtin.waf import request_fields
    from originlock.proto.events import RequestReceived
    from originlock.testing.pki import TestPki, make_route, make_snapshot

    route = make_route("app.example.test")
    ctx = RequestContext("ray", make_snapshot(TestPki(), route), "https", "192.0.2.7", 1, 0.0)
    ctx.route = route
    request = RequestReceived(b"GET", b"/", b"1.1", [(b"Host", b"app.example.test")], True, "none", False)
    assert request_fields(request, ctx, 0.0).extra["cf.zone.name"] == route.zone_name.encode()
