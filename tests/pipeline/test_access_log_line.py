"""The access-log line is built without json.dumps per request, yet is byte for byte what it was: the
compact json.dumps of the same record (same fields, same order, same escaping, same number formats)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.pipeline.builtin.access_log import _millis, _thousandths, access_log_line
from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.waf.actions import Action, Phase
from originlock.waf.rules import RuleMatch, Verdict

PKI = TestPki()
ROUTE = make_route("a.example.test", zone="example.test")
SNAPSHOT = make_snapshot(PKI, ROUTE, generation=42)


def thousandths(value: float) -> float:
    """``value`` to the nearest thousandth as the line records it: ``value * 1000`` (a float product)
    rounded half away from zero, over 1000. It is ``round(value, 3)`` but near a tie (see below)."""
    if not -1e12 < value < 1e12:
        return round(value, 3)
    scaled = value * 1000.0
    if scaled == 0:
        return scaled  # 0.0 or -0.0
    if scaled > 0:
        return math.floor(scaled + 0.5) / 1000
    return -(math.floor(0.5 - scaled) / 1000)  # -0.0 when it rounds to zero, as round() gives


def reference_line(ctx: RequestContext, request: RequestReceived | None, now: float, wall_time: float) -> str:
    """The record as the edge logged it before this change (a dict through json.dumps): the oracle."""
    record: dict[str, object] = {
        "time": thousandths(wall_time),
        "ray_id": ctx.ray_id,
        "client_ip": ctx.client_ip,
        "scheme": ctx.scheme,
        "host": ctx.host,
        "method": request.method.decode("latin-1") if request else "",
        "path": request.target.decode("latin-1") if request else "",
        "status": ctx.status,
        "bytes": ctx.bytes_sent,
        "duration_ms": thousandths((now - ctx.started) * 1000.0),
        "zone": ctx.route.zone_name if ctx.route else "",
        "generation": ctx.snapshot.generation,
    }
    if ctx.peer is not None:
        peer = ctx.peer
        record["origin"] = f"{'https' if peer.tls else 'http'}://{peer.host}:{peer.port}"
        record["client_cert"] = peer.client_cert.id if peer.client_cert else None
        record["origin_reused"] = ctx.origin_reused
        if ctx.origin_retried:
            record["origin_retried"] = True
    if ctx.waf is not None and (ctx.waf.matches or ctx.waf.terminated):
        verdict = ctx.waf
        record["waf"] = {
            "action": verdict.action.value if verdict.action else None,
            "rule_id": verdict.rule_id,
            "phase": verdict.phase.value if verdict.phase else None,
            "matches": [
                {"rule_id": m.rule_id, "action": m.action.value, "phase": m.phase.value} for m in verdict.matches
            ],
        }
    if ctx.origin_rule_ids:
        record["origin_rules"] = list(ctx.origin_rule_ids)
    if ctx.error_code:
        record["error"] = ctx.error_code
        record["error_detail"] = ctx.error_detail
    return json.dumps(record, separators=(",", ":"))


def _context(host: str = "a.example.test", **changes: object) -> RequestContext:
    ctx = RequestContext("0123abcd4567ef89-OLK", SNAPSHOT, "https", "203.0.113.7", 50123, 100.0, sni=host)
    ctx.host, ctx.route, ctx.status, ctx.bytes_sent = host, ROUTE, 200, 1234
    for name, value in changes.items():
        setattr(ctx, name, value)
    return ctx


def _request(target: bytes = b"/a?b=c", method: bytes = b"GET") -> RequestReceived:
    return RequestReceived(method, target, b"1.1", [(b"Host", b"a.example.test")], True, "none", False)


PEER = OriginPeer("198.51.100.9", 443, True, "a.example.test", VerifyMode.STRICT, client_cert=PKI.global_client)
PLAIN_PEER = OriginPeer("origin.example.test", 80, False, "a.example.test", VerifyMode.NONE)
VERDICT = Verdict(
    action=Action.BLOCK,
    rule_id="r2",
    phase=Phase.HTTP_REQUEST_FIREWALL_CUSTOM,
    matches=(
        RuleMatch("r1", Action.LOG, Phase.HTTP_REQUEST_FIREWALL_CUSTOM),
        RuleMatch("r2", Action.BLOCK, Phase.HTTP_REQUEST_FIREWALL_CUSTOM),
    ),
)

CASES = {
    "pooled": (_context(peer=PEER, origin_reused=True), _request()),
    "retried, plain origin": (_context(peer=PLAIN_PEER, origin_retried=True), _request(b"/x", b"POST")),
    "no zone": (_context(host="unknown.test", route=None, status=409, error_code=1001, error_detail="DNS"), _request()),
    "unparsable request": (_context(host="", route=None, status=400, error_code=400, error_detail='bad "head"'), None),
    "waf and origin rules": (_context(status=403, waf=VERDICT, origin_rule_ids=("o1", "o2")), _request()),
    "log-only verdict": (_context(waf=Verdict(matches=VERDICT.matches[:1])), _request()),
    "empty verdict": (_context(waf=Verdict()), _request()),
    "escapes": (_context(host='h"\\\x01\u00e9'), _request(b'/\xff\xe9"\\\n\t\x7f?q=\x00')),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("now", "wall"), [(100.0123456, 1764849600.1234567), (250.5, 1764849600.0), (100.0, 0.0005)])
def test_line_is_the_json_of_the_same_record(case: str, now: float, wall: float) -> None:
    ctx, request = CASES[case]
    line = access_log_line(ctx, request, now, wall)
    assert line == reference_line(ctx, request, now, wall)
    assert json.loads(line)["ray_id"] == ctx.ray_id


@settings(max_examples=200, deadline=None)
@given(host=st.text(), target=st.binary(), now=st.floats(0, 1e11), wall=st.floats(-1e13, 1e13))
def test_any_host_and_target(host: str, target: bytes, now: float, wall: float) -> None:
    ctx, request = _context(host=host, peer=PEER), _request(target)
    assert access_log_line(ctx, request, now, wall) == reference_line(ctx, request, now, wall)


@settings(max_examples=2000, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0005, 2.675, -0.0004, 1e12 - 5e-4]))
def test_milliseconds_render_as_json_renders_the_rounded_float(value: float) -> None:
    assert _millis(value) == json.dumps(thousandths(value))
    # The value is round(value, 3), what json.dumps of the record held before, unless value * 1000 lies
    # within its own rounding error of a half (the float product, not the exact decimal, is rounded).
    if not -1e12 < value < 1e12:
        return
    scaled = abs(value) * 1000.0
    if abs(scaled - math.floor(scaled) - 0.5) > scaled * 2.0**-51:
        assert _millis(value) == json.dumps(round(value, 3))


@settings(max_examples=2000, deadline=None)
@given(n=st.integers(-(10**15) + 1, 10**15 - 1) | st.sampled_from([0, 1, 10, 100, 999, 1000, 1001, -1, -1000]))
def test_thousandths_render_as_json_renders_the_quotient(n: int) -> None:
    assert _thousandths(n) == json.dumps(n / 1000)


def test_origin_fields_follow_the_peer_not_only_its_host() -> None:
    """The origin fields are remembered per origin host; another port, scheme or certificate on the same
    host is another line."""
    other_cert = PKI.client("other.example.test", id="other")
    peers = [
        PEER,
        OriginPeer("198.51.100.9", 8443, True, "a.example.test", VerifyMode.STRICT, client_cert=PKI.global_client),
        OriginPeer("198.51.100.9", 8443, False, "a.example.test", VerifyMode.NONE, client_cert=PKI.global_client),
        OriginPeer("198.51.100.9", 8443, False, "a.example.test", VerifyMode.NONE, client_cert=other_cert),
        OriginPeer("198.51.100.9", 8443, False, "a.example.test", VerifyMode.NONE),
        PEER,
    ]
    for peer in peers:
        ctx, request = _context(peer=peer), _request()
        assert access_log_line(ctx, request, 100.5, 1764849600.5) == reference_line(ctx, request, 100.5, 1764849600.5)


@pytest.mark.parametrize(
    ("ray_id", "plain"),
    [("0123abcd4567ef89-OLK", True), ("0123abcd4567ef89-OLK", False), ('0123abcd4567ef89-a"b\\\x01é', False)],
)
def test_ray_ids_are_escaped_unless_their_maker_says_they_need_not(ray_id: str, plain: bool) -> None:
    # edge/ray_ids.py's RayIds.json_plain says so for the ids it makes (tests/edge/test_edge_ray_id.py).
    ctx = _context(ray_id=ray_id, ray_id_plain=plain, peer=PEER)
    line = access_log_line(ctx, _request(), 100.5, 1764849600.5)
    assert line == reference_line(ctx, _request(), 100.5, 1764849600.5)
    assert json.loads(line)["ray_id"] == ray_id


def test_zone_generation_and_origin_follow_each_request() -> None:
    """The zone/generation/origin part is remembered from the last line: every change shows."""
    later = dataclasses.replace(SNAPSHOT, generation=SNAPSHOT.generation + 1)
    other_route = make_route("b.example.test")
    contexts = [
        _context(peer=PEER),
        _context(peer=PEER, snapshot=later),
        _context(peer=PLAIN_PEER, snapshot=later),
        _context(peer=PLAIN_PEER, snapshot=later, route=other_route),
        _context(peer=None, snapshot=later, route=other_route),
        _context(peer=PEER),
    ]
    for ctx in contexts:
        line = access_log_line(ctx, _request(), 100.5, 1764849600.5)
        assert line == reference_line(ctx, _request(), 100.5, 1764849600.5)


def test_remembered_parts_follow_each_request() -> None:
    """Runs of fields are remembered from the last line (visitor, request, status and size, zone and origin
    with the reuse flags): a change to any one value shows in the next line, and a value that comes back
    shows again."""
    base = {"peer": PEER, "origin_reused": True}
    steps: list[tuple[dict[str, object], RequestReceived | None]] = [
        ({}, _request()),
        ({}, _request(bytes(bytearray(b"/a?b=c")), bytes(bytearray(b"GET")))),  # equal, other objects
        ({"client_ip": "2001:db8::7"}, _request()),
        ({"client_ip": "2001:db8::7", "scheme": "http"}, _request()),
        ({"scheme": "http"}, _request()),
        ({"host": "b.example.test"}, _request()),
        ({"host": "b.example.test"}, _request(b"/a?b=d")),
        ({"host": "b.example.test"}, _request(b"/a?b=d", b"HEAD")),
        ({}, _request(b"/a?b=d", b"HEAD")),
        ({}, None),
        ({}, _request(b"/a?b=d", b"HEAD")),
        ({"status": 404}, _request()),
        ({"status": 404, "bytes_sent": 0}, _request()),
        ({"bytes_sent": 0}, _request()),
        ({"status": 1000, "bytes_sent": 10**20}, _request()),
        ({"status": -1}, _request()),
        ({"origin_reused": False}, _request()),
        ({"origin_retried": True}, _request()),
        ({"origin_retried": True, "origin_reused": False}, _request()),
        ({"origin_retried": True, "error_code": 502, "error_detail": "x"}, _request()),
        ({"origin_retried": True}, _request()),
        ({"waf": VERDICT}, _request()),
        ({"peer": None, "origin_retried": True}, _request()),
        ({"peer": None, "origin_rule_ids": ("o1",)}, _request()),
        ({}, _request()),
    ]
    for changes, request in steps:
        ctx = _context()
        for name, value in {**base, **changes}.items():
            setattr(ctx, name, value)
        line = access_log_line(ctx, request, 100.5, 1764849600.5)
        assert line == reference_line(ctx, request, 100.5, 1764849600.5), changes


_HOSTS = st.sampled_from(["a.example.test", "b.example.test", 'h"\\\x01\u00e9', "", "\u2603.test"])
_TARGETS = st.sampled_from([b"/", b"/a?b=c", b'/\xff\xe9"\\\n\t\x7f?q=\x00', b"*"]) | st.binary(max_size=8)
_METHODS = st.sampled_from([b"GET", b"POST", b"G\xe9T"])


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            _HOSTS,
            st.one_of(st.none(), st.tuples(_METHODS, _TARGETS)),
            st.sampled_from(["203.0.113.7", "198.51.100.1", "::1"]),
            st.sampled_from(["https", "http"]),
            st.sampled_from([200, 304, 404, 520, 99, 1234]),
            st.sampled_from([0, 16, 1234, 2**40]),
            st.sampled_from([None, PEER, PLAIN_PEER]),
            st.booleans(),
            st.booleans(),
            st.floats(-1e13, 1e13) | st.sampled_from([100.0, 100.0004999, 100.0005, 1e9 + 100.0]),
            st.floats(-1e13, 1e13) | st.sampled_from([1764849600.0, 1764849600.9995, 1764849601.0005]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_sequence_of_lines(
    lines: list[
        tuple[str, tuple[bytes, bytes] | None, str, str, int, int, OriginPeer | None, bool, bool, float, float]
    ],
) -> None:
    """Lines in a row, drawn from few values so that they repeat (the remembered parts' case) and with odd
    hosts and paths, negative and huge durations, times before 1970 and far ahead: each is the json.dumps
    of its own record."""
    for host, head, client_ip, scheme, status, sent, peer, reused, retried, now, wall in lines:
        request = _request(bytes(bytearray(head[1])), bytes(bytearray(head[0]))) if head is not None else None
        ctx = _context(host=host, client_ip=client_ip, scheme=scheme, status=status, bytes_sent=sent)
        ctx.peer, ctx.origin_reused, ctx.origin_retried = peer, reused, retried
        assert access_log_line(ctx, request, now, wall) == reference_line(ctx, request, now, wall)
