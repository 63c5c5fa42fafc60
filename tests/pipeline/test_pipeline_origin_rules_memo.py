"""Origin Rules that read only the host are evaluated once per (zone, host) and snapshot; others per request."""

from __future__ import annotations

import dataclasses

import pytest

from originlock.pipeline import RequestContext
from originlock.pipeline.builtin.origin_rules_memo import OriginRulesMemo, reads_host_only
from originlock.pipeline.builtin.waf import EdgeWaf
from originlock.proto.events import RequestReceived
from originlock.snapshot.model import Snapshot
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.waf import Action, Phase, RouteOverride, Rule, compile_ruleset, parse
from originlock.waf.ast import field_names

PKI = TestPki()
APP = make_route("app.example.test")


def _snapshot(*rules: Rule, custom: list[Rule] | None = None) -> Snapshot:
    phases = {Phase.HTTP_REQUEST_ORIGIN: (compile_ruleset(Phase.HTTP_REQUEST_ORIGIN, rules),)}
    if custom:
        phases[Phase.HTTP_REQUEST_FIREWALL_CUSTOM] = (compile_ruleset(Phase.HTTP_REQUEST_FIREWALL_CUSTOM, custom),)
    return dataclasses.replace(make_snapshot(PKI, APP), waf={APP.zone_id: phases})


def _route(rule_id: str, expression: str, port: int) -> Rule:
    return Rule(rule_id, expression, Action.ROUTE, action_parameters={"origin": {"port": port}})


def _run(waf: EdgeWaf, snapshot: Snapshot, host: str, target: bytes = b"/") -> RequestContext:
    ctx = RequestContext("ray", snapshot, "https", "192.0.2.1", 1, 0.0)
    ctx.host, ctx.route = host, APP
    request = RequestReceived(b"GET", target, b"1.1", [(b"Host", host.encode())], True, "none", False)
    waf(request, ctx)
    return ctx


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ('http.host eq "a"', {"http.host"}),
        (
            'lower(http.host) in {"a" "b"} and not starts_with(http.request.uri.path, "/x")',
            {"http.host", "http.request.uri.path"},
        ),
        ('any(http.request.headers["x"][*] == "y")', {"http.request.headers"}),
        ("true", {"true"}),  # a constant written as an identifier; reads_host_only knows it reads nothing
    ],
)
def test_field_names_sees_fields_inside_functions_and_indexes(expression: str, names: set[str]) -> None:
    assert field_names(parse(expression)) == names


def test_only_rules_reading_nothing_but_the_host_are_host_only() -> None:
    host_rule = _route("h", 'lower(http.host) eq "a.test"', 1)
    path_rule = _route("p", 'http.request.uri.path eq "/api"', 2)
    assert reads_host_only([compile_ruleset(Phase.HTTP_REQUEST_ORIGIN, [host_rule])])
    assert not reads_host_only([compile_ruleset(Phase.HTTP_REQUEST_ORIGIN, [host_rule, path_rule])])


def test_host_rules_are_remembered_per_host_and_forgotten_with_the_snapshot() -> None:
    waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    snapshot = _snapshot(_route("b", 'http.host eq "b.example.test"', 9444), _route("any", "true", 9000))
    app = _run(waf, snapshot, "app.example.test")
    b = _run(waf, snapshot, "b.example.test")
    assert (app.origin_override, app.origin_rule_ids) == (RouteOverride(origin_port=9000), ("any",))
    assert (b.origin_override, b.origin_rule_ids) == (RouteOverride(origin_port=9000), ("b", "any"))
    assert len(waf.origin_memo.outcomes) == 2 and app.waf is not None and not app.waf.matches
    again = _run(waf, snapshot, "b.example.test")
    assert (again.origin_override, again.origin_rule_ids) == (b.origin_override, b.origin_rule_ids)
    assert len(waf.origin_memo.outcomes) == 2
    # A new snapshot (the rules changed): nothing of the old one's outcomes is used.
    changed = _snapshot(_route("b2", 'http.host eq "b.example.test"', 7000))
    after = _run(waf, changed, "b.example.test")
    assert (after.origin_override, after.origin_rule_ids) == (RouteOverride(origin_port=7000), ("b2",))
    assert len(waf.origin_memo.outcomes) == 1


def test_rules_reading_more_than_the_host_run_per_request() -> None:
    waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    snapshot = _snapshot(
        _route("api", 'http.host eq "app.example.test" and starts_with(http.request.uri.path, "/api")', 1)
    )
    api = _run(waf, snapshot, "app.example.test", b"/api/x")
    other = _run(waf, snapshot, "app.example.test", b"/web")
    assert (api.origin_rule_ids, other.origin_rule_ids) == (("api",), ())
    assert len(waf.origin_memo.outcomes) == 0


def test_custom_rules_still_run_beside_remembered_origin_rules() -> None:
    waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    block = Rule("blk", 'http.request.uri.path eq "/admin"', Action.BLOCK)
    snapshot = _snapshot(_route("o", 'http.host eq "app.example.test"', 9444), custom=[block])
    blocked = _run(waf, snapshot, "app.example.test", b"/admin")
    assert blocked.waf is not None and blocked.waf.rule_id == "blk" and blocked.origin_rule_ids == ("o",)
    passed = _run(waf, snapshot, "app.example.test", b"/")
    assert passed.waf is not None and not passed.waf.terminated and passed.origin_rule_ids == ("o",)


def test_the_memo_is_bounded() -> None:
    memo = OriginRulesMemo()
    rulesets = (compile_ruleset(Phase.HTTP_REQUEST_ORIGIN, [_route("h", 'http.host eq "x"', 1)]),)
    for n in range(memo.outcomes.limit + 10):
        memo.outcome(memo, "zone", rulesets, f"h{n}.test")
    assert len(memo.outcomes) <= memo.outcomes.limit


def test_the_last_outcome_is_handed_out_again_only_for_the_same_zone_and_host() -> None:
    memo = OriginRulesMemo()
    rulesets = (compile_ruleset(Phase.HTTP_REQUEST_ORIGIN, [_route("h", 'http.host eq "x.test"', 1)]),)
    zone = "zone"
    first = memo.outcome(memo, zone, rulesets, "x.test")
    assert first == (RouteOverride(origin_port=1), ("h",))
    memo.outcomes.clear()  # what follows for the same zone and host comes from the last outcome alone
    assert memo.outcome(memo, zone, rulesets, "x.test") == first  # (compiled, a tuple is re-boxed: not "is")
    assert len(memo.outcomes) == 0
    # Another host, or the same host after another snapshot: evaluated (and cached) again.
    assert memo.outcome(memo, zone, rulesets, "y.test") == (None, ())
    assert memo.outcome(object(), zone, rulesets, "x.test") == first and len(memo.outcomes) == 1
    # A zone whose rules read more than the host gets no outcome, even right after a remembered one.
    path_rules = (compile_ruleset(Phase.HTTP_REQUEST_ORIGIN, [_route("p", 'http.request.uri.path eq "/"', 2)]),)
    assert memo.outcome(memo.snapshot, "other zone", path_rules, "x.test") is None


def test_the_zone_looked_up_last_follows_the_snapshot_and_the_zone() -> None:
    waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    with_rules = _snapshot(_route("any", "true", 9000))
    assert _run(waf, with_rules, "app.example.test").origin_rule_ids == ("any",)
    # The same zone id in a snapshot without the rules: nothing left over from the last lookup.
    without = make_snapshot(PKI, APP)
    ctx = _run(waf, without, "app.example.test")
    assert (ctx.origin_override, ctx.origin_rule_ids, ctx.waf) == (None, (), None)
    # Another zone (an equal id in another string object is the same zone) in the first snapshot.
    other = dataclasses.replace(APP, zone_id="".join(APP.zone_id))
    ctx = RequestContext("ray", with_rules, "https", "192.0.2.1", 1, 0.0)
    ctx.host, ctx.route = "app.example.test", other
    waf(RequestReceived(b"GET", b"/", b"1.1", [(b"Host", b"app.example.test")], True, "none", False), ctx)
    assert ctx.origin_rule_ids == ("any",)
