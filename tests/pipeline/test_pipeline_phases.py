"""The pure phases with plain values: routing, SSL modes, AOP certificate, forwarding headers."""

from __future__ import annotations

import pytest

from originlock.errors import ClientCertUnusable, MalformedRequest, UnknownHostname
from originlock.origin.peer import VerifyMode
from originlock.pipeline import CONTINUE, Forward, PipelineSettings, RequestContext, Respond, run_until_origin
from originlock.proto.events import RequestReceived
from originlock.proto.http1 import RequestParser
from originlock.snapshot.model import SslMode
from originlock.testing.pki import TestPki, make_route, make_snapshot

PKI = TestPki()
CERT = PKI.client("zone-a")
SETTINGS = PipelineSettings(origin_https_port=8443, origin_http_port=8080, public_http_port=80, public_https_port=443)


def request(
    host: bytes = b"app.example.test",
    target: bytes = b"/x",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: str = "none",
) -> RequestReceived:
    return RequestReceived(b"GET", target, b"1.1", [(b"Host", host), *(headers or [])], True, body, False)


def ctx(*routes: object, scheme: str = "https") -> RequestContext:
    snapshot = make_snapshot(PKI, *routes)  # type: ignore[arg-type]
    return RequestContext(
        ray_id="r-OLK",
        snapshot=snapshot,
        scheme=scheme,
        client_ip="192.0.2.1",
        client_port=1,
        started=0.0,
        tls_version="TLSv1.3",
    )


@pytest.mark.parametrize(
    ("mode", "scheme", "tls", "port", "verify"),
    [
        (SslMode.FLEXIBLE, "https", False, 8080, VerifyMode.NONE),
        (SslMode.FULL, "https", True, 8443, VerifyMode.NONE),
        (SslMode.FULL, "http", False, 8080, VerifyMode.NONE),
        (SslMode.STRICT, "https", True, 8443, VerifyMode.STRICT),
        (SslMode.ORIGIN_PULL, "http", True, 8443, VerifyMode.STRICT),
    ],
)
def test_ssl_mode_chooses_scheme_port_and_verification(
    mode: SslMode, scheme: str, tls: bool, port: int, verify: VerifyMode
) -> None:
    c = ctx(make_route("app.example.test", ssl_mode=mode, client_cert=CERT), scheme=scheme)
    decision = run_until_origin(request(), c, SETTINGS)
    assert isinstance(decision, Forward)
    peer = decision.peer
    assert (peer.tls, peer.port, peer.verify) == (tls, port, verify)
    assert (peer.client_cert is CERT) == tls
    assert peer.pool_key()[6] == (CERT.fingerprint if tls else "")


def test_off_redirects_https_and_always_use_https_redirects_http() -> None:
    off = run_until_origin(request(target=b"/a?b"), ctx(make_route("app.example.test", ssl_mode=SslMode.OFF)), SETTINGS)
    assert isinstance(off, Respond) and off.status == 301
    assert dict(off.headers)[b"Location"] == b"http://app.example.test/a?b"
    c = ctx(make_route("app.example.test", always_use_https=True), scheme="http")
    up = run_until_origin(request(), c, SETTINGS)
    assert isinstance(up, Respond) and dict(up.headers)[b"Location"] == b"https://app.example.test/x"


def test_unknown_host_missing_host_and_unusable_certificate() -> None:
    with pytest.raises(UnknownHostname):
        run_until_origin(request(b"other.test"), ctx(make_route("app.example.test")), SETTINGS)
    bare = RequestReceived(b"GET", b"/", b"1.1", [], True, "none", False)
    with pytest.raises(MalformedRequest):
        run_until_origin(bare, ctx(make_route("app.example.test")), SETTINGS)
    failing = make_route("app.example.test", client_cert_error="expired")
    with pytest.raises(ClientCertUnusable):
        run_until_origin(request(), ctx(failing), SETTINGS)


def test_waf_hook_can_respond() -> None:
    blocked = Respond(403, body=b"blocked")
    decision = run_until_origin(request(), ctx(make_route("app.example.test")), SETTINGS, lambda r, c: blocked)
    assert decision is blocked
    passed = run_until_origin(request(), ctx(make_route("app.example.test")), SETTINGS, lambda r, c: CONTINUE)
    assert isinstance(passed, Forward)


def test_forwarding_headers_strip_hop_by_hop_and_spoofing() -> None:
    req = request(
        headers=[
            (b"Connection", b"keep-alive, X-Secret"),
            (b"X-Secret", b"1"),
            (b"CF-Ray", b"fake"),
            (b"X-Forwarded-For", b"10.0.0.1"),
            (b"Content-Length", b"3"),
        ],
        body="length",
    )
    decision = run_until_origin(req, ctx(make_route("app.example.test")), SETTINGS)
    assert isinstance(decision, Forward)
    head = RequestParser().feed(decision.head)[0]
    assert isinstance(head, RequestReceived)
    headers = head.headers
    names = [n.lower() for n, _ in headers]
    assert b"connection" not in names and b"x-secret" not in names
    values = dict(headers)
    assert values[b"CF-Ray"] == b"r-OLK" and values[b"X-Forwarded-For"] == b"10.0.0.1, 192.0.2.1"
    assert values[b"CF-Visitor"] == b'{"scheme":"https"}' and values[b"Content-Length"] == b"3"
    assert values[b"Host"] == b"app.example.test"
