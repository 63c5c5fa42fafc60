"""The CRS's response phase (RESPONSE-950..959) in the engine, with plain values: the CRS's own response
cases, the request's transaction carried into phases 3 and 4, overrides of the response deployment, and
what the edge's inspection holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from originlock.pipeline.builtin.waf_response import ManagedResponse, merge_response
from originlock.proto.events import ResponseReceived
from originlock.store.ruleset_rules import RulesetInvalid, check_rules, parse_phase
from originlock.testing.crs_ftw import judge, load_cases
from originlock.testing.reflect_origin import reflection, sniff_content_type
from originlock.waf import Action, Phase, RuleMatch, Verdict
from originlock.waf.managed import EngineConfig, HttpRequest, load_engine
from originlock.waf.managed.cloudflare import OUTBOUND_SCORE_RULE_REF, OWASP_RULESET_ID, engine_config, rule_id_for
from originlock.waf.managed.config import REGRESSION_TX
from originlock.waf.managed.phase import ManagedPlan, run_managed_keeping, run_response
from originlock.waf.managed.transaction import HttpResponse

from .leak_pages import BENIGN, LEAKS, content_type
from .test_vs_modsecurity import parse_raw

CRS_TESTS = Path(__file__).resolve().parents[3].parent / "shared/data/coreruleset-4.28.0/tests/regression/tests"
#: Phase 5 (RESPONSE-980, reporting for ModSecurity's error log) is not shipped (docs/waf.md).
NOT_SHIPPED = {"980170-1", "980170-2"}
GET = HttpRequest(b"GET", b"/page", headers=((b"Host", b"app.test"), (b"User-Agent", b"Mozilla/5.0")))


def _plan(overrides: dict[str, Any] | None = None) -> ManagedPlan:
    params: dict[str, Any] = {"id": OWASP_RULESET_ID}
    if overrides is not None:
        params["overrides"] = overrides
    return ManagedPlan(engine_config(params), "execute-rule")


def _html(body: bytes, status: int = 200, *extra: tuple[bytes, bytes]) -> HttpResponse:
    return HttpResponse(status, b"HTTP/1.1", ((b"Content-Type", b"text/html"), *extra), body)


def test_the_crs_response_cases_against_the_engine() -> None:
    """Every response-phase regression case: the request through phases 1-2, what albedo would answer
    through phases 3-4 on the same transaction, judged by the ids logged in all four."""
    if not CRS_TESTS.is_dir():
        pytest.skip(f"CRS regression tests not found at {CRS_TESTS}")
    engine = load_engine()
    config = EngineConfig(paranoia_level=4, threshold=5, actions=((949110, "log"), (959100, "log")), tx=REGRESSION_TX)
    cases = [c for c in load_cases(CRS_TESTS) if c.rule_id >= 950000]
    assert len(cases) == 71
    failures = set()
    for case in cases:
        request = parse_raw(case.raw)
        t = engine.transaction(request, config)
        inbound = engine.run(t, config, (1, 2))
        status, headers, body = reflection(request.method, request.target, request.body or b"")
        outbound = engine.respond(t, HttpResponse(status, b"HTTP/1.1", tuple(headers), body or None), config)
        logged = {m.rule_id for m in inbound.matches + outbound.matches}
        if judge(case, logged, status):
            failures.add(case.name)
    assert failures == NOT_SHIPPED


@pytest.mark.parametrize(("name", "body"), LEAKS)
def test_each_leak_is_blocked_by_the_outbound_score_at_pl1(name: str, body: bytes) -> None:
    response = HttpResponse(200, b"HTTP/1.1", ((b"Content-Type", content_type(name)),), body)
    verdict = run_response(_plan(), response, GET, None)
    assert verdict.action is Action.BLOCK
    assert verdict.rule_id == rule_id_for(OUTBOUND_SCORE_RULE_REF)
    assert verdict.phase is Phase.HTTP_RESPONSE_FIREWALL_MANAGED
    assert verdict.outbound_score is not None and verdict.outbound_score >= 4
    assert {m.phase for m in verdict.matches} == {Phase.HTTP_RESPONSE_FIREWALL_MANAGED}


@pytest.mark.parametrize(("name", "body"), BENIGN)
def test_ordinary_pages_pass(name: str, body: bytes) -> None:
    response = HttpResponse(200, b"HTTP/1.1", ((b"Content-Type", content_type(name)),), body)
    verdict = run_response(_plan(), response, GET, None)
    assert verdict.action is None and verdict.matches == () and verdict.outbound_score == 0


def test_the_response_phase_continues_the_request_transaction() -> None:
    """Phases 3-4 run on the request's TX: the inbound scores stay, the outbound ones are the response's,
    and a response evaluated without the request phases (initialization alone) decides the same."""
    plan = _plan({"rules": [{"id": "6179ae15870a4bb7b2d480d4843b323c", "action": "log", "score_threshold": 5}]})
    attack = HttpRequest(b"GET", b"/?id=1%27%20UNION%20SELECT%20password%20FROM%20users--", headers=GET.headers)
    inbound, t = run_managed_keeping(plan, attack)
    assert inbound.score and inbound.score >= 5 and inbound.action is None  # logged, not blocked
    leak = _html(LEAKS[0][1])
    outbound = run_response(plan, leak, attack, t)
    assert t.tx["blocking_inbound_anomaly_score"] == str(inbound.score).encode()
    assert outbound.action is Action.BLOCK and outbound.outbound_score == int(t.tx["blocking_outbound_anomaly_score"])
    alone = run_response(plan, leak, attack, None)
    assert [m.ref for m in alone.matches] == [m.ref for m in outbound.matches]


def test_outbound_threshold_and_action_are_the_959100_override() -> None:
    rule = rule_id_for(OUTBOUND_SCORE_RULE_REF)
    config = engine_config({"id": OWASP_RULESET_ID, "overrides": {"rules": [{"id": rule, "score_threshold": 9}]}})
    assert config.outbound_threshold == 9
    mysql = _html(LEAKS[0][1])  # one critical SQL leak: 5 < 9
    assert run_response(ManagedPlan(config, "x"), mysql, GET, None).action is None
    logged = _plan({"rules": [{"id": rule, "action": "log"}]})
    verdict = run_response(logged, mysql, GET, None)
    assert verdict.action is None and any(m.ref == "959100" for m in verdict.matches)
    with pytest.raises(ValueError, match="score rules"):
        other = [{"id": rule_id_for(951230), "score_threshold": 3}]
        engine_config({"id": OWASP_RULESET_ID, "overrides": {"rules": other}})


def test_status_rules_follow_the_response_deployments_paranoia_level() -> None:
    error = HttpResponse(503, b"HTTP/1.1", ((b"Content-Type", b"text/html"),), b"<p>down</p>")
    assert run_response(_plan(), error, GET, None).matches == ()
    pl2 = _plan({"categories": [{"category": "paranoia-level-2", "enabled": True}]})
    assert [m.ref for m in run_response(pl2, error, GET, None).matches] == ["950100", "959100"]


def test_a_compressed_body_is_not_read_as_text() -> None:
    gzip = _html(LEAKS[0][1], 200, (b"Content-Encoding", b"gzip"))
    assert run_response(_plan(), gzip, GET, None).matches == ()


def test_the_edge_holds_text_bodies_only() -> None:
    inspection = ManagedResponse(_plan(), None, None, None)  # type: ignore[arg-type]  # holds() reads neither

    def head(*headers: tuple[bytes, bytes], body: str = "length") -> ResponseReceived:
        return ResponseReceived(200, b"OK", b"1.1", list(headers), True, body)

    assert inspection.holds(head((b"Content-Type", b"text/html; charset=utf-8")))
    assert inspection.holds(head((b"content-type", b"TEXT/PLAIN")))
    assert inspection.holds(head((b"Content-Type", b"text/xml"), body="chunked"))
    assert not inspection.holds(head((b"Content-Type", b"application/json")))
    assert not inspection.holds(head((b"Content-Type", b"text/html"), (b"Content-Encoding", b"br")))
    assert not inspection.holds(head((b"Content-Type", b"text/html"), body="none"))
    assert not inspection.holds(head())


def test_the_access_log_verdict_keeps_both_phases() -> None:
    request = Verdict(matches=(RuleMatch("a", Action.LOG, Phase.HTTP_REQUEST_FIREWALL_MANAGED, "920350", 3),), score=3)
    response = run_response(_plan(), _html(LEAKS[5][1]), GET, None)
    merged = merge_response(request, response)
    assert merged.score == 3 and merged.outbound_score == response.outbound_score
    assert merged.action is Action.BLOCK and merged.matches[0].ref == "920350"
    assert merge_response(request, Verdict(outbound_score=0)).action is None


def test_the_response_entry_point_is_a_supported_phase() -> None:
    phase = parse_phase("http_response_firewall_managed")
    rule = {"id": "r1", "action": "execute", "expression": "true", "enabled": True}
    check_rules(phase, [{**rule, "action_parameters": {"id": OWASP_RULESET_ID}}])
    with pytest.raises(RulesetInvalid) as info:
        check_rules(phase, [{**rule, "action_parameters": {"id": "0" * 32}}])
    assert info.value.pointer == "/rules/0/action_parameters/id"


def test_sniffing_follows_go_for_the_cases_bodies() -> None:
    assert sniff_content_type(b"  <html><b>x</b>") == b"text/html; charset=utf-8"
    assert sniff_content_type(b"<title>404.14</title>") == b"text/html; charset=utf-8"
    assert sniff_content_type(b"<?php echo 1; ?>") == b"text/plain; charset=utf-8"
    assert sniff_content_type(b"\x00\x01binary") == b"application/octet-stream"
