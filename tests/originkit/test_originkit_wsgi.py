"""WSGI middleware behind the standard library's wsgiref server with TLS (CERT_OPTIONAL, so the middleware
is what refuses) and Apache-style SSL_CLIENT_CERT environ keys."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
from okhelpers import Pki

from originlock.originkit.ssl import make_origin_ssl_context
from originlock.originkit.verify import EdgeTrust
from originlock.originkit.wsgi import EdgeOnlyWSGIMiddleware, make_tls_wsgi_server
from originlock.tls.certs import spki_sha256

HOST = "app.example.test"


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    edge = environ["originlock.edge"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello {edge.subject} pinned={edge.pinned}".encode()]


@pytest.fixture(scope="module")
def port(pki: Pki) -> Iterator[int]:
    trust = EdgeTrust.from_pem(pki.path("both-ca.pem").read_text(), pins={HOST: {spki_sha256(pki.zone_edge.cert)}})
    ctx = make_origin_ssl_context(
        pki.path("server.pem"), pki.path("server.key"), edge_ca_file=pki.path("both-ca.pem"), require=False
    )
    server = make_tls_wsgi_server("127.0.0.1", 0, EdgeOnlyWSGIMiddleware(hello, trust), ctx)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _get(pki: Pki, port: int, who: str | None) -> httpx.Response:
    ctx = ssl.create_default_context(cafile=str(pki.path("server-ca.pem")))
    if who:
        ctx.load_cert_chain(str(pki.path(f"{who}.pem")), str(pki.path(f"{who}.key")))
    with httpx.Client(verify=ctx, timeout=5, headers={"Host": HOST}) as client:
        return client.get(f"https://127.0.0.1:{port}/")


def test_wsgi_refuses_without_certificate(pki: Pki, port: int) -> None:
    assert _get(pki, port, None).status_code == 403


def test_wsgi_admits_pinned_certificate(pki: Pki, port: int) -> None:
    ok = _get(pki, port, "zone-edge")
    assert ok.status_code == 200 and ok.text == "hello CN=edge.example.test pinned=True"


def test_wsgi_refuses_other_tenants_certificate(pki: Pki, port: int) -> None:
    assert _get(pki, port, "global-edge").status_code == 403


def test_apache_environ_chain(pki: Pki) -> None:
    trust = EdgeTrust.from_pem(pki.origin_pull_ca.cert_pem)
    app = EdgeOnlyWSGIMiddleware(hello, trust)
    seen: list[str] = []
    environ = {
        "SSL_CLIENT_CERT": pki.global_edge.cert_pem,
        "SSL_CLIENT_CERT_CHAIN_0": pki.origin_pull_ca.cert_pem,
        "HTTP_HOST": HOST,
    }
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    assert seen == ["200 OK"] and body.startswith(b"hello CN=origin-pull.originlock.test")
