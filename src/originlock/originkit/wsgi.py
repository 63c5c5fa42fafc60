"""WSGI middleware: admit a request only when its TLS client certificate is the edge's.

The certificate is read from ``environ["SSL_CLIENT_CERT"]`` (PEM) and ``SSL_CLIENT_CERT_CHAIN_0..n``: the
names Apache mod_ssl exports with ``SSLOptions +ExportCertData`` and mod_wsgi passes through.
:class:`TlsWSGIRequestHandler` makes the standard library's ``wsgiref`` server export the same. Gunicorn
does not export the peer certificate; there, :func:`originlock.originkit.ssl.context_factory` enforces the
CA during the handshake, and pinning needs the forwarded-certificate mode behind a proxy.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from originlock.originkit.gate import DENIED_BODY, EdgeGate, ForwardedCert
from originlock.originkit.verify import EdgeTrust, EdgeVerificationError

__all__ = ["EdgeOnlyWSGIMiddleware", "TlsWSGIRequestHandler", "make_tls_wsgi_server"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

logger = logging.getLogger("originlock.originkit")
#: Apache mod_ssl exports at most this many chain entries by default; more is never needed for AOP.
MAX_CHAIN = 10


def _chain_from_environ(environ: dict[str, Any]) -> list[str]:
    leaf = environ.get("SSL_CLIENT_CERT")
    if not leaf:
        return []
    chain = [leaf]
    for i in range(MAX_CHAIN):
        item = environ.get(f"SSL_CLIENT_CERT_CHAIN_{i}")
        if not item:
            break
        chain.append(item)
    return chain


class EdgeOnlyWSGIMiddleware:
    """Wrap a WSGI app; requests without the edge's certificate get 403. On success the
    :class:`VerifiedEdge` is in ``environ["originlock.edge"]``."""

    def __init__(self, app: WSGIApp, trust: EdgeTrust, *, forwarded: ForwardedCert | None = None) -> None:
        self.app = app
        self.gate = EdgeGate(trust=trust, forwarded=forwarded)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        try:
            verified = self.gate.admit(
                peer_chain=_chain_from_environ(environ), host=environ.get("HTTP_HOST"), headers=headers
            )
        except EdgeVerificationError as exc:
            logger.warning(
                "refused request from %s for host %r: %s",
                environ.get("REMOTE_ADDR"),
                environ.get("HTTP_HOST"),
                exc.reason,
            )
            start_response(
                "403 Forbidden",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(DENIED_BODY)))],
            )
            return [DENIED_BODY]
        environ["originlock.edge"] = verified
        return self.app(environ, start_response)


class TlsWSGIRequestHandler(WSGIRequestHandler):
    """wsgiref handler that exports the TLS peer certificate as ``SSL_CLIENT_CERT`` (Apache's name)."""

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        conn = self.connection
        if isinstance(conn, ssl.SSLSocket):
            environ["HTTPS"] = "on"
            environ["wsgi.url_scheme"] = "https"
            der = conn.getpeercert(binary_form=True)
            if der:
                cert = x509.load_der_x509_certificate(der)
                environ["SSL_CLIENT_CERT"] = cert.public_bytes(serialization.Encoding.PEM).decode()
        return environ


def make_tls_wsgi_server(host: str, port: int, app: WSGIApp, context: ssl.SSLContext) -> WSGIServer:
    """A wsgiref server on ``host:port`` speaking TLS with ``context`` (e.g. ``make_origin_ssl_context``).

    For development and tests: wsgiref is single-threaded and does the TLS handshake in its accept loop.
    """
    server = make_server(host, port, app, handler_class=TlsWSGIRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server
