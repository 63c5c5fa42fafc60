"""The managed "Cloudflare OWASP Core Ruleset" in the Rulesets API: listed, readable, deployed by an
execute rule with Cloudflare's overrides, and refused with a pointer when the overrides are wrong."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ApiEnv

from originlock.store import schema
from originlock.store.ruleset_rules import compile_entrypoints
from originlock.waf import Phase
from originlock.waf.managed.cloudflare import OWASP_RULESET_ID, SCORE_RULE_ID, engine_config, rule_id_for

MANAGED = "http_request_firewall_managed"


def _put(api: ApiEnv, zone: str, rules: list[Any]) -> Any:
    url = f"/client/v4/zones/{zone}/rulesets/phases/{MANAGED}/entrypoint"
    return api.client.put(url, json={"rules": rules}, headers=api.admin)


def test_the_managed_ruleset_is_listed_and_readable(api: ApiEnv) -> None:
    zone = api.zone()
    listed = api.client.get(f"/client/v4/zones/{zone}/rulesets", headers=api.admin).json()["result"]
    owasp = next(r for r in listed if r["id"] == OWASP_RULESET_ID)
    assert owasp["kind"] == "managed" and owasp["name"] == "Cloudflare OWASP Core Ruleset"
    assert owasp["phase"] == MANAGED and "rules" not in owasp
    full = api.client.get(f"/client/v4/zones/{zone}/rulesets/{OWASP_RULESET_ID}", headers=api.admin).json()["result"]
    by_ref = {r["ref"]: r for r in full["rules"]}
    assert by_ref["949110"]["id"] == SCORE_RULE_ID and by_ref["949110"]["action"] == "block"
    sqli = by_ref["942100"]
    assert sqli["id"] == rule_id_for(942100) and sqli["enabled"] is True
    assert "attack-sqli" in sqli["categories"] and "paranoia-level-1" in sqli["categories"]
    assert by_ref["942101"]["enabled"] is False and "paranoia-level-2" in by_ref["942101"]["categories"]
    missing = api.client.get(f"/client/v4/zones/{'f' * 32}/rulesets/{OWASP_RULESET_ID}", headers=api.admin)
    assert missing.status_code in (400, 403, 404) and missing.json()["success"] is False


def test_execute_rule_with_overrides_is_stored_and_compiled(api: ApiEnv) -> None:
    zone = api.zone()
    params = {
        "id": OWASP_RULESET_ID,
        "overrides": {
            "categories": [
                {"category": "paranoia-level-2", "enabled": True},
                {"category": "attack-rce", "enabled": False},
            ],
            "rules": [
                {"id": SCORE_RULE_ID, "score_threshold": 25, "action": "managed_challenge"},
                {"id": rule_id_for(942100), "enabled": False},
            ],
        },
    }
    rules = [
        {
            "action": "skip",
            "expression": 'http.request.uri.path eq "/health"',
            "action_parameters": {"ruleset": "current"},
        },
        {"action": "execute", "expression": "true", "action_parameters": params},
    ]
    r = _put(api, zone, rules)
    assert r.status_code == 200, r.text
    stored = r.json()["result"]["rules"]
    assert stored[1]["action_parameters"] == params
    with api.store.read() as conn:
        rows = list(conn.execute(schema.rulesets.select().where(schema.rulesets.c.zone_id == zone)))
    compiled = compile_entrypoints(rows)[zone][Phase.HTTP_REQUEST_FIREWALL_MANAGED]
    assert [c.rule.action.value for c in compiled[0].rules] == ["skip", "execute"]
    config = engine_config(params)
    assert config.paranoia_level == 2 and config.threshold == 25
    assert 942100 in config.disabled and 932160 in config.disabled and 941100 not in config.disabled
    assert dict(config.actions)[949110] == "managed_challenge"


def test_bad_execute_rules_are_400_with_a_pointer(api: ApiEnv) -> None:
    zone = api.zone()
    base: dict[str, Any] = {"action": "execute", "expression": "true"}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"id": "0" * 32}, "/rules/0/action_parameters/id", "does not exist"),
        (
            {"id": OWASP_RULESET_ID, "overrides": {"rules": [{"id": "nope"}]}},
            "/rules/0/action_parameters/overrides/rules/0/id",
            "is not in",
        ),
        (
            {"id": OWASP_RULESET_ID, "overrides": {"rules": [{"id": SCORE_RULE_ID, "score_threshold": 0}]}},
            "/rules/0/action_parameters/overrides/rules/0/score_threshold",
            "positive integer",
        ),
        (
            {"id": OWASP_RULESET_ID, "overrides": {"categories": [{"category": "x", "action": "explode"}]}},
            "/rules/0/action_parameters/overrides/categories/0/action",
            "not a valid value for action",
        ),
    ]
    for params, pointer, message in cases:
        r = _put(api, zone, [{**base, "action_parameters": params}])
        assert r.status_code == 400, r.text
        error = r.json()["errors"][0]
        assert error["source"] == {"pointer": pointer}, error
        assert message in error["message"], error
    block = _put(api, zone, [{"action": "block", "expression": "true"}])
    assert block.status_code == 400 and "not allowed in phase" in block.json()["errors"][0]["message"]
