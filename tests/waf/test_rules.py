"""Ruleset compilation and phase evaluation: custom rules, skip, rate limiting, Origin Rules."""

from __future__ import annotations

import pytest

from originlock.waf import (
    Action,
    Phase,
    RateLimiter,
    RateLimitSpec,
    RequestFields,
    Rule,
    RuleError,
    Verdict,
    compile_ruleset,
    evaluate_origin,
    evaluate_request,
)
from originlock.waf.rules import RuleMatch

REQ = RequestFields(method="GET", host="a.example", path="/admin", ip="192.0.2.1")
CUSTOM = Phase.HTTP_REQUEST_FIREWALL_CUSTOM


def custom(*rules: Rule) -> dict[Phase, tuple]:  # type: ignore[type-arg]
    return {CUSTOM: (compile_ruleset(CUSTOM, rules),)}


def test_first_terminating_rule_wins_and_log_continues() -> None:
    verdict = evaluate_request(
        REQ,
        custom(
            Rule("r1", 'http.request.uri.path eq "/admin"', Action.LOG),
            Rule("r2", "ssl", Action.BLOCK),
            Rule("r3", 'http.host eq "a.example"', Action.BLOCK),
            Rule("r4", "true", Action.MANAGED_CHALLENGE),
        ),
    )
    assert (verdict.action, verdict.rule_id, verdict.status_code) == (Action.BLOCK, "r3", 403)
    assert [m.rule_id for m in verdict.matches] == ["r1", "r3"]


def test_custom_block_response_and_disabled_rules() -> None:
    params = {"response": {"status_code": 418, "content": "no", "content_type": "text/plain"}}
    verdict = evaluate_request(
        REQ,
        custom(
            Rule("off", "true", Action.BLOCK, enabled=False),
            Rule("r", "true", Action.BLOCK, action_parameters=params),
        ),
    )
    assert verdict.rule_id == "r" and verdict.status_code == 418


def test_no_match_continues() -> None:
    verdict = evaluate_request(REQ, custom(Rule("r", "ssl", Action.BLOCK)))
    assert verdict == Verdict()
    assert not verdict.terminated and verdict.status_code is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"ruleset": "current"}, None), ({"phase": "current"}, None), ({"products": ["waf"]}, "r2")],
)
def test_skip_applies_to_later_rules_only(params: dict[str, object], expected: str | None) -> None:
    verdict = evaluate_request(
        REQ, custom(Rule("s", "true", Action.SKIP, action_parameters=params), Rule("r2", "true", Action.BLOCK))
    )
    assert verdict.rule_id == expected
    assert verdict.matches[0] == RuleMatch("s", Action.SKIP, CUSTOM)


def test_skip_phases_skips_rate_limiting_and_managed() -> None:
    seen: list[str] = []

    def managed(values: object) -> Verdict:
        seen.append("managed")
        return Verdict(Action.BLOCK, "m")

    phases = custom(
        Rule(
            "s", "true", Action.SKIP, action_parameters={"phases": ["http_ratelimit", "http_request_firewall_managed"]}
        )
    )
    verdict = evaluate_request(REQ, phases, limiter=RateLimiter(), managed=managed)
    assert not verdict.terminated and seen == []
    assert verdict.skipped_phases == {"http_ratelimit", "http_request_firewall_managed"}
    verdict = evaluate_request(REQ, {}, managed=managed)
    assert verdict.phase is Phase.HTTP_REQUEST_FIREWALL_MANAGED and verdict.rule_id == "m"


@pytest.mark.parametrize(
    ("rule", "pointer"),
    [
        (Rule("r", 'http.host eq "a', Action.BLOCK), "/rules/0/expression"),
        (Rule("r", "true", Action.ROUTE), "/rules/0/action"),
        (
            Rule("r", "true", Action.BLOCK, action_parameters={"response": {"status_code": 500}}),
            "/rules/0/action_parameters",
        ),
        (Rule("r", "true", Action.SKIP, action_parameters={"ruleset": "other"}), "/rules/0/action_parameters"),
        (Rule("r", "ip.src in $missing", Action.BLOCK), "/rules/0/expression"),
    ],
)
def test_invalid_rules_point_at_the_bad_member(rule: Rule, pointer: str) -> None:
    with pytest.raises(RuleError) as info:
        compile_ruleset(CUSTOM, [rule])
    assert info.value.pointer == pointer


def test_bad_expression_message_is_cloudflare_shaped() -> None:
    with pytest.raises(RuleError) as info:
        compile_ruleset(CUSTOM, [Rule("r", "http.host eq", Action.BLOCK)])
    assert (
        "is not a valid value for expression because could not parse filter expression: "
        "Filter parsing error (1:13)" in info.value.message
    )
    assert info.value.parse_error is not None


def _ratelimited(timeout: int, limit: int = 2, counting: str = "") -> dict[Phase, tuple]:  # type: ignore[type-arg]
    spec = RateLimitSpec(("cf.colo.id", "ip.src"), 10, limit, timeout, counting)
    ruleset = compile_ruleset(
        Phase.HTTP_RATELIMIT, [Rule("rl", 'http.request.uri.path eq "/admin"', Action.BLOCK, ratelimit=spec)]
    )
    return {Phase.HTTP_RATELIMIT: (ruleset,)}


def test_rate_limit_blocks_over_the_rate_and_recovers_after_mitigation_timeout() -> None:
    limiter, phases = RateLimiter(), _ratelimited(timeout=60)
    results = [evaluate_request(REQ, phases, limiter=limiter, now=100.0 + i).status_code for i in range(4)]
    assert results == [None, None, 429, 429]
    other_ip = RequestFields(method="GET", host="a.example", path="/admin", ip="192.0.2.2")
    assert not evaluate_request(other_ip, phases, limiter=limiter, now=104.0).terminated
    assert evaluate_request(REQ, phases, limiter=limiter, now=150.0).terminated  # still mitigated
    assert not evaluate_request(REQ, phases, limiter=limiter, now=200.0).terminated


def test_rate_limit_throttle_mode_blocks_only_the_excess() -> None:
    limiter, phases = RateLimiter(), _ratelimited(timeout=0, limit=1)
    assert not evaluate_request(REQ, phases, limiter=limiter, now=10.0).terminated
    assert evaluate_request(REQ, phases, limiter=limiter, now=10.5).terminated
    # Next window: the previous window's weight decays, so the rate falls back under the limit.
    assert not evaluate_request(REQ, phases, limiter=limiter, now=39.0).terminated


def test_rate_limit_counting_expression_and_pruning() -> None:
    limiter = RateLimiter()
    phases = _ratelimited(timeout=10, limit=1, counting='http.request.method eq "POST"')
    for i in range(3):
        assert not evaluate_request(REQ, phases, limiter=limiter, now=float(i)).terminated
    limiter.prune(1000.0)
    assert len(limiter) == 0


def test_rate_limit_spec_validation() -> None:
    with pytest.raises(ValueError, match="period"):
        RateLimitSpec(("cf.colo.id",), 7, 1)
    with pytest.raises(ValueError, match=r"cf\.colo\.id"):
        RateLimitSpec(("ip.src",), 10, 1)
    with pytest.raises(RuleError):
        compile_ruleset(Phase.HTTP_RATELIMIT, [Rule("r", "true", Action.BLOCK)])


def test_origin_rules_merge_later_rules_win() -> None:
    ruleset = compile_ruleset(
        Phase.HTTP_REQUEST_ORIGIN,
        [
            Rule(
                "o1",
                'http.host eq "a.example"',
                Action.ROUTE,
                action_parameters={"origin": {"port": 8443}, "sni": {"value": "origin.internal"}},
            ),
            Rule("o2", "true", Action.ROUTE, action_parameters={"origin": {"port": 9443}, "host_header": "b.internal"}),
            Rule("o3", "ssl", Action.ROUTE, action_parameters={"origin": {"host": "x"}}),
        ],
    )
    route, matched = evaluate_origin(REQ, [ruleset])
    assert matched == ("o1", "o2")
    assert route is not None
    assert (route.origin_port, route.sni, route.host_header, route.origin_host) == (
        9443,
        "origin.internal",
        "b.internal",
        None,
    )
    with pytest.raises(RuleError):
        compile_ruleset(
            Phase.HTTP_REQUEST_ORIGIN, [Rule("o", "true", Action.ROUTE, action_parameters={"origin": {"port": 0}})]
        )
