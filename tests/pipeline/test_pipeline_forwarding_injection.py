"""The head writers refuse CR, LF and NUL in what they write (issue 10 item 3, the edge's second line of
defence), and a Connection field naming Host is refused (item 14)."""

from __future__ import annotations

import pytest

from originlock.errors import MalformedRequest, UnsafeHeaderValue
from originlock.pipeline import Forward, PipelineSettings, RequestContext, Respond, run_until_origin
from originlock.pipeline.builtin.forwarding import origin_request_head, origin_request_headers, override_host
from originlock.pipeline.decision import CONTINUE, Decision
from originlock.proto.events import RequestReceived
from originlock.proto.serialize import request_head, response_head
from originlock.snapshot.model import SslMode
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.waf import RouteOverride

SMUGGLE = "www.a.test\r\n\r\nGET /SMUGGLED HTTP/1.1\r\nHost: www.a.test\r\n\r\n"
PKI = TestPki()


def _request(*fields: tuple[bytes, bytes]) -> RequestReceived:
    return RequestReceived(b"GET", b"/", b"1.1", [(b"Host", b"www.e.test"), *fields], True, "none", False)


@pytest.mark.parametrize("host", [SMUGGLE, "a\nb", "a\rb", "a\x00b"])
def test_a_host_override_with_cr_lf_or_nul_is_refused(host: str) -> None:
    for fields in ((), ((b"Connection", b"x-secret"), (b"X-Secret", b"1"))):  # one-pass and list-based paths
        with pytest.raises(UnsafeHeaderValue):
            origin_request_head(_request(*fields), client_ip="192.0.2.1", scheme="http", ray_id="r", host=host)
    with pytest.raises(UnsafeHeaderValue):
        override_host([(b"Host", b"x")], host)


@pytest.mark.parametrize("value", [b"a\r\nX-Injected: 1", b"a\nb", b"a\rb", b"a\x00b"])
def test_generic_writers_refuse_cr_lf_nul_in_names_and_values(value: bytes) -> None:
    for fields in ([(b"X", value)], [(value, b"x")]):
        with pytest.raises(UnsafeHeaderValue):
            request_head(b"GET", b"/", fields)
        with pytest.raises(UnsafeHeaderValue):
            response_head(200, fields)


def test_unsafe_header_value_is_a_502_that_blames_configuration() -> None:
    assert UnsafeHeaderValue.status_hint == 502 and UnsafeHeaderValue().source.value == "internal"


@pytest.mark.parametrize("connection", [b"Host", b"keep-alive, host", b"HOST"])
def test_a_connection_field_naming_host_is_400(connection: bytes) -> None:
    request = _request((b"Connection", connection))
    with pytest.raises(MalformedRequest, match="names Host"):
        origin_request_head(request, client_ip="192.0.2.1", scheme="http", ray_id="r")
    with pytest.raises(MalformedRequest):
        origin_request_headers(request, client_ip="192.0.2.1", scheme="http", ray_id="r")


def test_an_origin_rule_injecting_a_request_never_produces_a_head() -> None:
    """Through the pure phases: ORIGIN_REQUEST raises before any Forward (so no origin connection is used)."""
    route = make_route("www.e.test", ssl_mode=SslMode.FLEXIBLE, zone="e.test")
    ctx = RequestContext("ray", make_snapshot(PKI, route), "http", "192.0.2.1", 1, 0.0)

    def waf(request: RequestReceived, ctx: RequestContext) -> Decision:
        ctx.origin_override = RouteOverride(host_header=SMUGGLE)
        return CONTINUE

    with pytest.raises(UnsafeHeaderValue):
        run_until_origin(_request(), ctx, PipelineSettings(), waf)
    plain = RequestContext("ray", make_snapshot(PKI, route), "http", "192.0.2.1", 1, 0.0)
    decision: Respond | Forward = run_until_origin(_request(), plain, PipelineSettings())
    assert isinstance(decision, Forward) and decision.head.count(b"\r\n") == 8
