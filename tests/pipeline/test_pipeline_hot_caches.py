"""The per-route caches of the request path (docs/performance.md step 4) never change a decision.

ORIGIN_SELECT caches peers per (snapshot, settings, route, scheme, hostname); ROUTE caches Host values.
These tests pin what must still differ: hostnames of one wildcard route (SNI), schemes, snapshots (a
rotated certificate is a new pool key), Origin Rules overrides, and the fail-closed 525.
"""

from __future__ import annotations

import dataclasses

import pytest

from originlock.errors import ClientCertUnusable, MalformedRequest
from originlock.pipeline import Forward, PipelineSettings, RequestContext, run_until_origin
from originlock.pipeline.builtin.forwarding import origin_request_headers, visitor_response_headers
from originlock.pipeline.builtin.origin_select import select_origin
from originlock.pipeline.builtin.zone_router import host_of
from originlock.proto.events import BodyReceived, RequestReceived, ResponseReceived
from originlock.snapshot.model import Snapshot, SslMode
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.waf import RouteOverride

PKI = TestPki()
CERT_A = PKI.client("zone-a")
CERT_B = PKI.client("zone-b")
SETTINGS = PipelineSettings(origin_https_port=8443, origin_http_port=8080)


def _request(host: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> RequestReceived:
    return RequestReceived(b"GET", b"/", b"1.1", [(b"Host", host), *(headers or [])], True, "none", False)


def _forward(snapshot: Snapshot, host: bytes, scheme: str = "https") -> tuple[Forward, RequestContext]:
    ctx = RequestContext(
        ray_id="r-OLK", snapshot=snapshot, scheme=scheme, client_ip="192.0.2.1", client_port=1, started=0.0
    )
    decision = run_until_origin(_request(host), ctx, SETTINGS)
    assert isinstance(decision, Forward)
    return decision, ctx


def test_peer_is_reused_per_route_and_differs_by_hostname_and_scheme() -> None:
    snapshot = make_snapshot(PKI, make_route("*.example.test", ssl_mode=SslMode.FULL, client_cert=CERT_A))
    one, _ = _forward(snapshot, b"one.example.test")
    again, _ = _forward(snapshot, b"one.example.test")
    two, _ = _forward(snapshot, b"two.example.test")
    plain, _ = _forward(snapshot, b"one.example.test", scheme="http")
    assert again.peer is one.peer
    assert (one.peer.sni, two.peer.sni) == ("one.example.test", "two.example.test")
    assert one.peer.pool_key() != two.peer.pool_key()
    assert (plain.peer.tls, plain.peer.port) == (False, 8080)
    # Back and forth (the last peer handed out is remembered apart from the cache): each gets its own.
    assert _forward(snapshot, b"one.example.test")[0].peer is one.peer
    assert _forward(snapshot, b"one.example.test", scheme="http")[0].peer is plain.peer
    assert _forward(snapshot, b"two.example.test")[0].peer is two.peer


def test_a_new_snapshot_gives_a_new_peer_with_the_rotated_certificate() -> None:
    old = make_snapshot(PKI, make_route("app.example.test", ssl_mode=SslMode.STRICT, client_cert=CERT_A))
    new = make_snapshot(PKI, make_route("app.example.test", ssl_mode=SslMode.STRICT, client_cert=CERT_B))
    before, _ = _forward(old, b"app.example.test")
    after, _ = _forward(new, b"app.example.test")
    assert before.peer.client_cert is CERT_A and after.peer.client_cert is CERT_B
    assert before.peer.pool_key()[6] == CERT_A.fingerprint
    assert after.peer.pool_key()[6] == CERT_B.fingerprint
    assert _forward(old, b"app.example.test")[0].peer.client_cert is CERT_A  # back to the old one: no stale peer


def test_unusable_certificate_fails_closed_on_every_request() -> None:
    route = make_route("app.example.test", ssl_mode=SslMode.STRICT, client_cert=CERT_A, client_cert_error="expired")
    snapshot = make_snapshot(PKI, route)
    for _ in range(2):
        with pytest.raises(ClientCertUnusable):
            _forward(snapshot, b"app.example.test")


def test_origin_rules_override_bypasses_the_cache() -> None:
    snapshot = make_snapshot(PKI, make_route("app.example.test", ssl_mode=SslMode.FULL, client_cert=CERT_A))
    plain, ctx = _forward(snapshot, b"app.example.test")
    ctx.origin_override = RouteOverride(origin_port=9999, sni="other.test")
    overridden = select_origin(ctx, SETTINGS)
    assert (overridden.port, overridden.sni) == (9999, "other.test")
    assert overridden.pool_key() != plain.peer.pool_key()
    assert _forward(snapshot, b"app.example.test")[0].peer is plain.peer  # the override was not cached


def test_host_values_are_normalised_once_and_errors_are_not_cached() -> None:
    assert host_of(_request(b"App.Example.Test.:8443")) == "app.example.test"
    assert host_of(_request(b"App.Example.Test.:8443")) == "app.example.test"
    for _ in range(2):
        with pytest.raises(MalformedRequest):
            host_of(_request(b"user@app.example.test"))
    with pytest.raises(MalformedRequest):
        host_of(_request(b"app.example.test", [(b"Host", b"app.example.test")]))
    absolute = RequestReceived(
        b"GET", b"http://abs.test/x", b"1.1", [(b"Host", b"app.example.test")], True, "none", False
    )
    assert host_of(absolute) == "abs.test"


def test_the_last_host_value_is_remembered_apart_from_the_cache() -> None:
    for value, host in [(b"A.test", "a.test"), (b"A.test", "a.test"), (b"b.test:1", "b.test"), (b"A.test", "a.test")]:
        assert host_of(_request(value)) == host
    # Another spelling of the name, and two fields after a remembered value: read as before.
    assert host_of(RequestReceived(b"GET", b"/", b"1.1", [(b"hOST", b"c.test")], True, "none", False)) == "c.test"
    with pytest.raises(MalformedRequest):
        host_of(_request(b"c.test", [(b"HOST", b"c.test")]))


def test_connection_named_fields_are_dropped_in_both_directions() -> None:
    request = _request(
        b"a.test",
        [(b"X-Forwarded-For", b"10.0.0.1"), (b"Connection", b"x-forwarded-for, X-Secret"), (b"X-Secret", b"s")],
    )
    out = origin_request_headers(request, client_ip="192.0.2.1", scheme="https", ray_id="r")
    assert [n for n, _ in out] == [
        b"Host", b"X-Forwarded-For", b"X-Forwarded-Proto", b"CF-Connecting-IP", b"CF-Visitor", b"CF-Ray"
    ]  # fmt: skip
    assert dict(out)[b"X-Forwarded-For"] == b"192.0.2.1"
    response = ResponseReceived(
        200,
        b"OK",
        b"1.1",
        [(b"Connection", b"Content-Length"), (b"Content-Length", b"3"), (b"A", b"b")],
        True,
        "length",
    )
    assert visitor_response_headers(response, ray_id="r", chunked=False, close=False) == [
        (b"A", b"b"),
        (b"CF-Ray", b"r"),
    ]


def test_events_compare_by_value() -> None:
    assert _request(b"a.test") == _request(b"a.test") != _request(b"b.test")
    assert BodyReceived(b"x") == BodyReceived(b"x") != BodyReceived(b"y")
    assert dataclasses.is_dataclass(RequestReceived) is False  # plain slotted classes (performance.md step 4)
