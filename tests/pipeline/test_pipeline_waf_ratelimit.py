"""Rate-limit zones: the hook fills only the fields the custom and rate-limit rules read (expressions,
counting expressions, characteristics), and its verdicts are evaluate_request's over the whole request."""

from __future__ import annotations

import dataclasses
import random

import pytest

from originlock.pipeline import PipelineSettings, RequestContext, run_until_origin
from originlock.pipeline.builtin.waf import EdgeWaf, _ZoneLookup, request_fields
from originlock.proto.events import RequestReceived
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.waf import Action, Phase, RateLimiter, RateLimitSpec, Rule, compile_ruleset, evaluate_request

PKI = TestPki()
SETTINGS = PipelineSettings(origin_https_port=8443, origin_http_port=8080)
APP = make_route("app.example.test")
IPS = ["192.0.2.7", "2001:db8::1", "198.51.100.7"]
TARGETS = [b"/", b"/api/x", b"/api/./y?k=1", b"/login", b"/static/a.css"]
AGENTS = [b"curl/8", b"bot/1", b"Mozilla/5.0"]


def _spec(characteristics: tuple[str, ...], limit: int, timeout: int = 0, counting: str = "") -> RateLimitSpec:
    return RateLimitSpec(("cf.colo.id", *characteristics), 10, limit, timeout, counting)


#: Rules reading fields the filler fills (path, the user agent, the method, ip.src, a header map entry).
FILLED = [
    Rule("api", 'starts_with(http.request.uri.path, "/api")', Action.BLOCK, ratelimit=_spec(("ip.src",), 3, 10)),
    Rule(
        "agent",
        'http.request.method eq "GET"',
        Action.LOG,
        ratelimit=_spec(("http.user_agent",), 2, counting='http.request.uri.path ne "/static/a.css"'),
    ),
    Rule(
        "login",
        'http.request.uri.path eq "/login"',
        Action.BLOCK,
        ratelimit=_spec(('http.request.headers["x-key"][0]', "ip.src"), 1),
    ),
]
#: A characteristic computed from the whole request (the query's arguments are not filled).
ARGS = Rule("args", "true", Action.BLOCK, ratelimit=_spec(("http.request.uri.args",), 4, 60))
CUSTOM = [Rule("c", 'http.user_agent eq "bot/1" and http.request.uri.path eq "/login"', Action.BLOCK)]


def _snapshot(phases: dict[Phase, list[Rule]]) -> object:
    compiled = {phase: (compile_ruleset(phase, rules),) for phase, rules in phases.items()}
    return dataclasses.replace(make_snapshot(PKI, APP), waf={APP.zone_id: compiled})


def _request(rng: random.Random) -> RequestReceived:
    headers = [(b"Host", b"app.example.test"), (b"User-Agent", rng.choice(AGENTS))]
    if rng.random() < 0.5:
        headers.append((b"X-Key", rng.choice([b"k1", b"k2"])))
    return RequestReceived(rng.choice([b"GET", b"POST"]), rng.choice(TARGETS), b"1.1", headers, True, "none", False)


@pytest.mark.parametrize("custom", [False, True])
@pytest.mark.parametrize("rules", [FILLED, [*FILLED, ARGS]], ids=["filled", "args"])
def test_rate_limit_verdicts_are_evaluate_requests(rules: list[Rule], custom: bool) -> None:
    phases = {Phase.HTTP_RATELIMIT: rules, **({Phase.HTTP_REQUEST_FIREWALL_CUSTOM: CUSTOM} if custom else {})}
    snapshot = _snapshot(phases)
    now = [0.0]
    made: list[int] = []

    def wall_clock() -> float:
        made.append(1)  # request_fields reads it once per whole request made
        return 1234.5

    waf = EdgeWaf(lambda: now[0], wall_clock)
    reference = RateLimiter()
    rng = random.Random(len(rules) + custom)
    outcomes: set[object] = set()
    for n in range(400):
        now[0] = n * 0.1
        request = _request(rng)
        ctx = RequestContext("ray", snapshot, "https", rng.choice(IPS), 1, 0.0)  # type: ignore[arg-type]
        decision = run_until_origin(request, ctx, SETTINGS, waf=waf)
        fields = request_fields(request, ctx, 1234.5)
        expected = evaluate_request(fields, snapshot.waf[APP.zone_id], limiter=reference, now=now[0])  # type: ignore[attr-defined]
        assert ctx.waf == expected, (n, request.target, ctx.client_ip)
        assert (type(decision).__name__ == "Respond") is expected.terminated
        outcomes.add((expected.rule_id, expected.terminated, len(expected.matches)))
    assert len(outcomes) >= 3  # requests passed, were logged and were refused
    assert len(waf.limiter) == len(reference)
    if ARGS in rules:
        # The arguments need the whole request: made once for each request that reaches that rule.
        assert 0 < len(made) <= 400
    else:
        assert not made  # the rules' fields filled from the head: the whole request never made


def test_the_request_plan_reads_expressions_counting_and_characteristics() -> None:
    zone = _ZoneLookup(_snapshot({Phase.HTTP_RATELIMIT: FILLED}), APP.zone_id)  # type: ignore[arg-type]
    plan = zone.request_plan
    assert plan is not None and zone.scans is None
    assert plan.path and plan.method and plan.ip and plan.header_map  # x-key: the header map
    assert [name for name, _, _ in plan.joined] == ["http.user_agent"]  # a characteristic only
    assert not (plan.host or plan.query or plan.timestamp or plan.extra)
    # Custom rules' fields join the rate-limit rules'.
    zone = _ZoneLookup(
        _snapshot({Phase.HTTP_RATELIMIT: FILLED[:1], Phase.HTTP_REQUEST_FIREWALL_CUSTOM: CUSTOM}), APP.zone_id
    )  # type: ignore[arg-type]
    assert zone.request_plan is not None and zone.request_plan.joined


def test_other_request_phases_keep_the_whole_request() -> None:
    # The managed rules read the whole request: no plan. Custom rules alone keep their own (waf3's) plan.
    managed = {Phase.HTTP_RATELIMIT: FILLED, Phase.HTTP_REQUEST_FIREWALL_MANAGED: []}
    assert _ZoneLookup(_snapshot(managed), APP.zone_id).request_plan is None  # type: ignore[arg-type]
    alone = _ZoneLookup(_snapshot({Phase.HTTP_REQUEST_FIREWALL_CUSTOM: CUSTOM}), APP.zone_id)  # type: ignore[arg-type]
    assert alone.request_plan is None and alone.plan is not None


def test_a_managed_hook_gets_the_whole_request() -> None:
    made: list[int] = []

    def wall_clock() -> float:
        made.append(1)
        return 1.0

    seen: list[object] = []
    waf = EdgeWaf(lambda: 0.0, wall_clock, managed=lambda values: seen.append(values.request) or None)
    request = _request(random.Random(1))
    ctx = RequestContext("ray", _snapshot({Phase.HTTP_RATELIMIT: FILLED}), "https", IPS[0], 1, 0.0)  # type: ignore[arg-type]
    run_until_origin(request, ctx, SETTINGS, waf=waf)
    assert made == [1] and len(seen) == 1


class _CountingPhases(dict):  # type: ignore[type-arg]
    """A zone's phases that count their look-ups."""

    gets = 0

    def get(self, key: object, default: object = None) -> object:
        type(self).gets += 1
        return super().get(key, default)


def test_a_zones_phases_are_looked_up_once_per_snapshot() -> None:
    """Each look-up by Phase hashes the enum in Python: the hook reads the zone's rulesets once per snapshot
    (its _ZoneLookup), not at each request."""
    compiled = {
        Phase.HTTP_RATELIMIT: (compile_ruleset(Phase.HTTP_RATELIMIT, FILLED),),
        Phase.HTTP_REQUEST_FIREWALL_CUSTOM: (compile_ruleset(Phase.HTTP_REQUEST_FIREWALL_CUSTOM, CUSTOM),),
    }
    snapshot = dataclasses.replace(make_snapshot(PKI, APP), waf={APP.zone_id: _CountingPhases(compiled)})
    waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    rng = random.Random(5)
    for n in range(20):
        ctx = RequestContext("ray", snapshot, "https", IPS[0], 1, 0.0)
        run_until_origin(_request(rng), ctx, SETTINGS, waf=waf)
        if n == 0:
            first = _CountingPhases.gets
    assert ctx.waf is not None and _CountingPhases.gets == first
