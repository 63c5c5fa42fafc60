"""Rulesets API over raw HTTP: error shapes, pointers, positions, dry runs and permissions (both stores)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ApiEnv

CUSTOM = "http_request_firewall_custom"


def _base(zone: str) -> str:
    return f"/client/v4/zones/{zone}/rulesets"


def _put(api: ApiEnv, zone: str, rules: list[Any], phase: str = CUSTOM, query: str = "") -> Any:
    return api.client.put(f"{_base(zone)}/phases/{phase}/entrypoint{query}", json={"rules": rules}, headers=api.admin)


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["result"] is None and len(body["errors"]) == 1
    return body["errors"][0]  # type: ignore[no-any-return]


def test_bad_rules_are_400_with_a_pointer(api: ApiEnv) -> None:
    zone = api.zone()
    cases: list[tuple[list[Any], str, str]] = [
        (
            [{"action": "block", "expression": "ssl"}, {"action": "block", "expression": "ssl\tand true"}],
            "/rules/1/expression",
            "is not a valid value for expression",
        ),
        ([{"action": "block"}], "/rules/0/expression", "cannot be blank"),
        ([{"expression": "ssl"}], "/rules/0/action", "action is required"),
        ([{"action": "explode", "expression": "ssl"}], "/rules/0/action", "not a valid value for action"),
        ([{"action": "route", "expression": "ssl"}], "/rules/0/action", "not allowed in phase"),
        ([{"action": "block", "expression": "ssl", "enabled": "yes"}], "/rules/0/enabled", "true or false"),
        (
            [{"action": "block", "expression": "ssl", "action_parameters": {"response": {"status_code": 200}}}],
            "/rules/0/action_parameters",
            "response",
        ),
        (
            [{"action": "skip", "expression": "ssl", "action_parameters": {"ruleset": "other"}}],
            "/rules/0/action_parameters",
            "current",
        ),
        (
            [{"action": "block", "expression": "ssl", "ref": "a"}, {"action": "log", "expression": "ssl", "ref": "a"}],
            "/rules/1/ref",
            "more than one rule",
        ),
        (["not an object"], "/rules/0", "must be an object"),
    ]
    for rules, pointer, message in cases:
        error = _error(_put(api, zone, rules), 400)
        assert error["source"] == {"pointer": pointer}, (rules, error)
        assert message in error["message"], (rules, error)
        assert error["code"] == 20125
    # Nothing was stored by any of them.
    assert _error(api.client.get(f"{_base(zone)}/phases/{CUSTOM}/entrypoint", headers=api.admin), 404)["code"] == 10003


def test_ratelimit_validation(api: ApiEnv) -> None:
    zone = api.zone()
    rl = {"characteristics": ["cf.colo.id", "ip.src"], "period": 10, "requests_per_period": 5}
    ok = _put(api, zone, [{"action": "block", "expression": "true", "ratelimit": rl}], "http_ratelimit")
    assert ok.status_code == 200, ok.text
    stored = ok.json()["result"]["rules"][0]["ratelimit"]
    assert stored["mitigation_timeout"] == 0 and stored["counting_expression"] == ""
    for bad, pointer in (
        ({**rl, "period": 7}, "/rules/0/ratelimit"),
        ({**rl, "characteristics": ["ip.src"]}, "/rules/0/ratelimit"),
        ({**rl, "requests_per_period": "5"}, "/rules/0/ratelimit/requests_per_period"),
        ({**rl, "characteristics": ["cf.colo.id", "http.host eq"]}, "/rules/0/ratelimit/characteristics/1"),
    ):
        error = _error(
            _put(api, zone, [{"action": "block", "expression": "true", "ratelimit": bad}], "http_ratelimit"), 400
        )
        assert error["source"] == {"pointer": pointer}, (bad, error)
    missing = _error(_put(api, zone, [{"action": "block", "expression": "true"}], "http_ratelimit"), 400)
    assert missing["source"] == {"pointer": "/rules/0/ratelimit"}
    misplaced = _error(_put(api, zone, [{"action": "block", "expression": "true", "ratelimit": rl}]), 400)
    assert misplaced["source"] == {"pointer": "/rules/0/ratelimit"}


def test_positions_and_rule_errors(api: ApiEnv) -> None:
    zone = api.zone()
    r = _put(api, zone, [{"action": "log", "expression": "true", "ref": "a"}])
    ruleset = r.json()["result"]
    rules_url = f"{_base(zone)}/{ruleset['id']}/rules"
    a = ruleset["rules"][0]["id"]

    def add(body: dict[str, Any]) -> list[str]:
        resp = api.client.post(rules_url, json={"action": "log", "expression": "true", **body}, headers=api.admin)
        assert resp.status_code == 200, resp.text
        return [rule["ref"] for rule in resp.json()["result"]["rules"]]

    assert add({"ref": "b"}) == ["a", "b"]
    assert add({"ref": "c", "position": {"before": a}}) == ["c", "a", "b"]
    assert add({"ref": "d", "position": {"after": a}}) == ["c", "a", "d", "b"]
    assert add({"ref": "e", "position": {"index": 1}}) == ["e", "c", "a", "d", "b"]
    assert add({"ref": "f", "position": {"after": ""}}) == ["e", "c", "a", "d", "b", "f"]
    for position, pointer in (
        ({"index": 99}, "/position/index"),
        ({"before": "0" * 32}, "/position/before"),
        ({"before": a, "after": a}, "/position"),
    ):
        resp = api.client.post(
            rules_url, json={"action": "log", "expression": "true", "position": position}, headers=api.admin
        )
        assert _error(resp, 400)["source"] == {"pointer": pointer}
    bad_expr = api.client.post(rules_url, json={"action": "log", "expression": "http.host eq 1"}, headers=api.admin)
    assert _error(bad_expr, 400)["source"] == {"pointer": "/expression"}
    missing = api.client.patch(f"{rules_url}/{'0' * 32}", json={"position": {"index": 1}}, headers=api.admin)
    assert _error(missing, 404)["code"] == 10003
    assert _error(api.client.delete(f"{rules_url}/{'0' * 32}", headers=api.admin), 404)["code"] == 10003


def test_dry_run_validates_without_storing(api: ApiEnv) -> None:
    zone = api.zone()
    generation = api.store.generation()
    r = _put(api, zone, [{"action": "block", "expression": "ssl"}], query="?dry_run=true")
    assert r.status_code == 200 and r.json()["result"] is None
    assert api.store.generation() == generation
    assert api.client.get(f"{_base(zone)}/phases/{CUSTOM}/entrypoint", headers=api.admin).status_code == 404
    bad = _error(_put(api, zone, [{"action": "block", "expression": "ssl eq"}], query="?dry_run=true"), 400)
    assert bad["source"] == {"pointer": "/rules/0/expression"}
    assert _error(_put(api, zone, [], query="?dry_run=maybe"), 400)["message"] == "dry_run must be true or false"


def test_unknown_phase_kind_and_ids(api: ApiEnv) -> None:
    zone = api.zone()
    unsupported = _error(_put(api, zone, [], "http_request_transform"), 400)
    assert (
        "supported phases: http_request_firewall_custom, http_ratelimit, http_request_origin" in unsupported["message"]
    )
    kind = api.client.post(_base(zone), json={"kind": "custom", "name": "x", "phase": CUSTOM}, headers=api.admin)
    assert _error(kind, 400)["source"] == {"pointer": "/kind"}
    assert _error(api.client.get(f"{_base(zone)}/{'0' * 32}", headers=api.admin), 404)["code"] == 10003
    body_not_object = api.client.put(f"{_base(zone)}/phases/{CUSTOM}/entrypoint", json=[1], headers=api.admin)
    assert _error(body_not_object, 400)["code"] == 9207
    rules_not_list = api.client.put(f"{_base(zone)}/phases/{CUSTOM}/entrypoint", json={"rules": {}}, headers=api.admin)
    assert _error(rules_not_list, 400)["source"] == {"pointer": "/rules"}


def test_firewall_permissions(api: ApiEnv) -> None:
    zone = api.zone()
    r = api.client.post(
        "/client/v4/user/tokens", json={"name": "ro", "permissions": ["firewall:read"]}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    reader = {"Authorization": f"Bearer {r.json()['result']['value']}"}
    assert api.client.get(_base(zone), headers=reader).status_code == 200
    denied = api.client.put(f"{_base(zone)}/phases/{CUSTOM}/entrypoint", json={"rules": []}, headers=reader)
    assert _error(denied, 403)["code"] == 10000
