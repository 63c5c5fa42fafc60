"""ASGI middleware behind a real uvicorn with TLS and client certificates (issue 4 part 3).

Also pins down, empirically, that stock uvicorn gives the app no TLS client certificate, which is why
``originlock.originkit.uvicorn_tls`` exists.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from okhelpers import Pki, free_port

from originlock.originkit.asgi import EdgeOnlyMiddleware
from originlock.originkit.gate import ForwardedCert
from originlock.originkit.ssl import context_factory
from originlock.originkit.uvicorn_tls import TlsH11Protocol, TlsHttpToolsProtocol
from originlock.originkit.verify import EdgeTrust
from originlock.tls.certs import spki_sha256

pytestmark = pytest.mark.slow
HOST = "app.example.test"


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Says what the server and middleware put in the scope."""
    ext = scope.get("extensions") or {}
    edge = ext.get("originlock.edge")
    body = json.dumps(
        {
            "tls_extension": "tls" in ext,
            "chain_len": len((ext.get("tls") or {}).get("client_cert_chain") or []),
            "edge_subject": edge.subject if edge else None,
            "pinned": edge.pinned if edge else None,
        }
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class Running:
    def __init__(self, config: uvicorn.Config) -> None:
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def servers(pki: Pki) -> Iterator[dict[str, int]]:
    trust = EdgeTrust.from_pem(pki.path("both-ca.pem").read_text(), pins={HOST: {spki_sha256(pki.zone_edge.cert)}})
    ports = {name: free_port() for name in ("required", "optional", "stock", "forwarded")}
    common: dict[str, Any] = {"host": "127.0.0.1", "log_level": "warning", "lifespan": "off"}
    cert, key, ca = pki.path("server.pem"), pki.path("server.key"), pki.path("both-ca.pem")
    configs = [
        uvicorn.Config(
            EdgeOnlyMiddleware(echo, trust),
            port=ports["required"],
            http=TlsHttpToolsProtocol,
            ssl_context_factory=context_factory(cert, key, ca),
            **common,
        ),
        uvicorn.Config(
            EdgeOnlyMiddleware(echo, trust),
            port=ports["optional"],
            http=TlsH11Protocol,
            ssl_context_factory=context_factory(cert, key, ca, require=False),
            **common,
        ),
        uvicorn.Config(echo, port=ports["stock"], ssl_context_factory=context_factory(cert, key, ca), **common),
        uvicorn.Config(EdgeOnlyMiddleware(echo, trust, forwarded=ForwardedCert()), port=ports["forwarded"], **common),
    ]
    runners = [Running(c) for c in configs]
    for r in runners:
        r.__enter__()
    try:
        yield ports
    finally:
        for r in runners:
            r.__exit__()


def _client(pki: Pki, who: str | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(pki.path("server-ca.pem")))
    if who:
        ctx.load_cert_chain(str(pki.path(f"{who}.pem")), str(pki.path(f"{who}.key")))
    return httpx.Client(verify=ctx, timeout=5, headers={"Host": HOST})


def _get(pki: Pki, port: int, who: str | None, scheme: str = "https") -> httpx.Response:
    with _client(pki, who) as client:
        return client.get(f"{scheme}://127.0.0.1:{port}/")


def test_stock_uvicorn_hides_the_peer_certificate(pki: Pki, servers: dict[str, int]) -> None:
    body = _get(pki, servers["stock"], "zone-edge").json()
    assert body["tls_extension"] is False  # uvicorn 0.54: no scope["extensions"]["tls"]


def test_required_tls_refuses_without_certificate(pki: Pki, servers: dict[str, int]) -> None:
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        _get(pki, servers["required"], None)
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        _get(pki, servers["required"], "stranger")


def test_pinned_hostname_admits_only_its_certificate(pki: Pki, servers: dict[str, int]) -> None:
    ok = _get(pki, servers["required"], "zone-edge")
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["chain_len"] >= 1  # the leaf only on Python < 3.13; the verified chain from 3.13 on
    assert body == {**body, "tls_extension": True, "edge_subject": "CN=edge.example.test", "pinned": True}
    # The shared certificate chains to a trusted CA, but is not the one bound to this hostname.
    assert _get(pki, servers["required"], "global-edge").status_code == 403


def test_middleware_enforces_when_tls_is_optional(pki: Pki, servers: dict[str, int]) -> None:
    denied = _get(pki, servers["optional"], None)
    assert denied.status_code == 403 and b"only accepts requests from its edge" in denied.content
    assert _get(pki, servers["optional"], "zone-edge").json()["pinned"] is True


def test_forwarded_certificate_mode(pki: Pki, servers: dict[str, int]) -> None:
    url = f"http://127.0.0.1:{servers['forwarded']}/"
    xfcc = f'Hash=x;Cert="{quote(pki.zone_edge.cert_pem, safe="")}"'
    with httpx.Client(timeout=5) as client:
        assert client.get(url, headers={"Host": HOST, "X-Forwarded-Client-Cert": xfcc}).status_code == 200
        assert client.get(url, headers={"Host": HOST}).status_code == 403
        bad = f'Cert="{quote(pki.stranger.cert_pem, safe="")}"'
        assert client.get(url, headers={"Host": HOST, "X-Forwarded-Client-Cert": bad}).status_code == 403
