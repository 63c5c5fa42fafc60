"""Fields filled from the request head (``waf_fields.py``) equal the extractors' values, and the hook's
custom-rules-alone path gives evaluate_request's verdict."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

import pytest

from originlock.pipeline import PipelineSettings, RequestContext, run_until_origin
from originlock.pipeline.builtin.waf import EdgeWaf, request_fields
from originlock.pipeline.builtin.waf_fields import FILLABLE, FieldFiller, FieldPlan, field_values
from originlock.proto.events import RequestReceived
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.waf import NO_MATCH, Action, FieldValues, Phase, Rule, compile_ruleset, evaluate_request
from originlock.waf.context import KNOWN_FIELDS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from product_vs_nginx import WAF_RULES

PKI = TestPki()
SETTINGS = PipelineSettings(origin_https_port=8443, origin_http_port=8080)
APP = make_route("app.example.test")
EXTRA_FIELDS = ("cf.ray_id", "cf.tls_version", "cf.zone.name", "cf.unknown")

TARGETS = [b"/", b"/a/b?x=1&y", b"/a/./b/../c", b"/%61%2F%7e?q=%41", b"/admin0", b"/wp-1/x", b"*", b"/x.php?"]
TARGETS += [b"http://h.test/p?q", b"/q?union select 3", b"/\\.git", b"/.git/x", b"/a%zz", b"/a#frag"]
HEADERS = [
    (b"User-Agent", b"scanner2/1.0"),
    (b"user-agent", b"second"),
    (b"Referer", b"https://spam.example/"),
    (b"Cookie", b"a=1"),
    (b"cookie", b"b=2"),
    (b"X-Forwarded-For", b"203.0.113.1"),
    (b"Accept-Language", b"en;q=0.5, fr"),
    (b"X-Other", b"\xff"),
]


def _case(rng: random.Random) -> tuple[RequestReceived, RequestContext]:
    headers = [(b"Host", b"app.example.test"), *rng.sample(HEADERS, rng.randrange(len(HEADERS) + 1))]
    request = RequestReceived(
        rng.choice([b"GET", b"get", b"TRACE", b"POST", b"M\xe9THOD"]),
        rng.choice(TARGETS),
        rng.choice([b"1.1", b"1.0", b"2"]),
        headers,
        True,
        "none",
        False,
    )
    ctx = RequestContext(
        rng.choice(["ray-1", "ray-2"]),
        make_snapshot(PKI, APP),
        rng.choice(["https", "http"]),
        rng.choice(["192.0.2.7", "2001:db8::1", "010.1.1.1", "not-an-ip", "198.51.100.7"]),
        1,
        0.0,
        tls_version=rng.choice(["TLSv1.3", ""]),
    )
    ctx.host = rng.choice(["app.example.test", "a.waf.test", "bücher.example", "BLOCKED.waf.test"])
    if rng.random() < 0.8:
        ctx.route = APP
    return request, ctx


CASES = [_case(random.Random(seed)) for seed in range(300)]
NAMES = sorted(KNOWN_FIELDS | set(EXTRA_FIELDS))


@pytest.mark.parametrize("names", [NAMES, ["http.host"], ["http.user_agent"], ["cf.ray_id", "ssl"], []])
def test_filled_values_equal_the_extractors(names: list[str]) -> None:
    plan = FieldPlan(names)
    filler = FieldFiller()
    for request, ctx in CASES:
        made: list[int] = []

        def make(request: RequestReceived = request, ctx: RequestContext = ctx, made: list[int] = made) -> object:
            made.append(1)
            return request_fields(request, ctx, 1234.5678)

        values = filler.fill(plan, request, ctx, lambda: 1234.5678, make)  # type: ignore[arg-type]
        filled = dict(values)
        assert not made  # filling never builds the request
        reference = FieldValues(request_fields(request, ctx, 1234.5678))
        for name in names:
            assert values[name] == reference[name], (name, request.target, ctx.host, ctx.client_ip)
        # What was filled is what the extractors give, and nothing a rule does not read but its inputs.
        for name, value in filled.items():
            assert value == reference[name], name
        if names == ["http.user_agent"]:
            assert set(filled) == {"http.user_agent"}


def test_a_field_not_filled_builds_the_request_once() -> None:
    request, ctx = CASES[0]
    made: list[int] = []

    def make() -> object:
        made.append(1)
        return request_fields(request, ctx, 1.0)

    values = FieldFiller().fill(FieldPlan(["http.host"]), request, ctx, lambda: 1.0, make)  # type: ignore[arg-type]
    assert values["http.host"] == ctx.host.encode("idna") and not made
    assert values["http.request.headers.names"] == tuple(name for name, _ in request.headers)
    assert values["http.request.uri.args"] is not None and values["http.request.timestamp.sec"] == 1
    assert made == [1]


def test_the_plan_follows_dependencies() -> None:
    plan = FieldPlan(["http.request.uri.path.extension", "http.request.cookies"])
    assert plan.path and plan.headers and not plan.query and not plan.host and not plan.extra
    assert [name for name, _, _ in plan.joined] == ["http.cookie"]
    # A field filled directly needs none of its extractor's inputs.
    plan = FieldPlan(["http.user_agent", "http.request.uri.path"])
    assert plan.headers and not plan.header_map and plan.path and not plan.raw_path
    assert FieldPlan(["cf.bot_management.score"]).extra and not FieldPlan(["http.host"]).extra


def _ctx(phases: dict[Phase, list[Rule]], host: bytes) -> tuple[RequestContext, RequestReceived]:
    snapshot = make_snapshot(PKI, APP)
    compiled = {phase: (compile_ruleset(phase, rules),) for phase, rules in phases.items()}
    snapshot = dataclasses.replace(snapshot, waf={APP.zone_id: compiled})
    ctx = RequestContext("ray-OLK", snapshot, "https", "192.0.2.7", 1, 0.0, tls_version="TLSv1.3")
    return ctx, RequestReceived(b"GET", b"/", b"1.1", [(b"Host", host)], True, "none", False)


RULES = [Rule(f"r{i}", text, Action.BLOCK if i % 3 else Action.LOG) for i, text in enumerate(WAF_RULES)]
RULES += [Rule("ray", 'cf.ray_id eq "ray-OLK" and http.request.uri.path eq "/ray"', Action.BLOCK)]
RULES += [Rule("args", 'any(http.request.uri.args.names[*] eq "evil")', Action.BLOCK)]


@pytest.mark.parametrize("complete", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_custom_rules_alone_give_evaluate_requests_verdict(seed: int, complete: bool) -> None:
    # complete: every field the rules read is filled (a plain dict, FieldValues made on a match); else the
    # args rule reads a field computed on demand from the request.
    rng = random.Random(seed)
    rules = [*rng.sample(RULES[:-1], 20), RULES[-2]] + ([] if complete else [RULES[-1]])
    phases = {Phase.HTTP_REQUEST_FIREWALL_CUSTOM: rules}
    waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    blocked = 0
    for request, other in CASES:
        ctx, _ = _ctx(phases, b"app.example.test")
        assert waf._lookup(ctx.snapshot, APP.zone_id).plan.complete is complete  # type: ignore[union-attr]
        own = request.target if request.target.startswith(b"/") else b"/"  # an absolute form names another host
        target = rng.choice([own, b"/admin1", b"/wp-3x", b"/ray", b"/?evil=1", b"/?union select 2"])
        request = RequestReceived(request.method, target, request.version, request.headers, True, "none", False)
        ctx.client_ip = other.client_ip
        decision = run_until_origin(request, ctx, SETTINGS, waf=waf)
        assert ctx.route is APP
        expected = evaluate_request(request_fields(request, ctx, 0.0), ctx.snapshot.waf[APP.zone_id])
        assert ctx.waf == expected, (target, rules)
        if expected is NO_MATCH or not expected.matches:
            assert ctx.waf is NO_MATCH
        blocked += expected.terminated
        assert (type(decision).__name__ == "Respond") is expected.terminated
    assert 0 < blocked < len(CASES)


@pytest.mark.parametrize("names", [NAMES, sorted(FILLABLE), ["http.host", "cf.tls_version"], ["cf.unknown"]])
def test_plain_fields_equal_the_extractors(names: list[str]) -> None:
    plan = FieldPlan(names)
    assert plan.complete is (names != NAMES)  # NAMES has fields computed from others (http.request.uri…)
    if not plan.complete:
        return
    filler = FieldFiller()
    for request, ctx in CASES:
        fields = filler.fill_plain(plan, request, ctx, lambda: 1234.5678)
        assert type(fields) is dict and set(names) <= set(fields)
        reference = FieldValues(request_fields(request, ctx, 1234.5678))
        made: list[int] = []

        def make(request: RequestReceived = request, ctx: RequestContext = ctx, made: list[int] = made) -> object:
            made.append(1)
            return request_fields(request, ctx, 1.5)

        values = field_values(fields, make)  # type: ignore[arg-type]
        for name in names:
            assert fields[name] == reference[name] == values[name], (name, request.target, ctx.host)
        assert not made
        assert values["http.request.uri"] == reference["http.request.uri"] and made == [1]


def test_the_zone_plan_is_made_for_custom_rules_alone() -> None:
    from originlock.pipeline.builtin.waf import _ZoneLookup

    custom = [Rule("a", 'http.user_agent contains "x"', Action.BLOCK)]
    ctx, _ = _ctx({Phase.HTTP_REQUEST_FIREWALL_CUSTOM: custom}, b"app.example.test")
    zone = _ZoneLookup(ctx.snapshot, APP.zone_id)
    assert zone.scans is not None and zone.plan is not None and zone.plan.headers and not zone.plan.path
    # The managed entry point alone is enough to keep the general path.
    ctx, _ = _ctx({Phase.HTTP_REQUEST_FIREWALL_CUSTOM: custom, Phase.HTTP_REQUEST_FIREWALL_MANAGED: []}, b"h")
    assert _ZoneLookup(ctx.snapshot, APP.zone_id).scans is None


def test_interleaved_zones_keep_their_lookups_for_the_snapshot() -> None:
    """Requests alternating between zones must not rebuild a zone's lookup (its field plan walks every rule)
    at each request; a new snapshot starts afresh."""
    custom = [Rule("a", 'http.user_agent contains "x"', Action.BLOCK)]
    ctx, _ = _ctx({Phase.HTTP_REQUEST_FIREWALL_CUSTOM: custom}, b"app.example.test")
    waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    first, other = waf._lookup(ctx.snapshot, APP.zone_id), waf._lookup(ctx.snapshot, "another-zone")
    assert first.plan is not None and other.plan is None
    assert waf._lookup(ctx.snapshot, APP.zone_id) is first and waf._lookup(ctx.snapshot, "another-zone") is other
    changed = dataclasses.replace(ctx.snapshot, generation=2)
    again = waf._lookup(changed, APP.zone_id)
    assert again is not first and again.snapshot is changed


def test_values_without_a_request_say_so() -> None:
    with pytest.raises(ValueError, match="nor a way to make one"):
        FieldValues(None)["http.host"]
