"""uvicorn protocols that put the TLS client certificate into ``scope["extensions"]["tls"]``.

uvicorn (checked on 0.54) terminates TLS but does not expose the peer certificate to the app. These
subclasses read it from the connection's ``ssl_object`` once, when the connection is made, and add the
ASGI TLS extension (https://asgi.readthedocs.io/en/latest/specs/tls.html) to every request scope on that
connection. Use::

    uvicorn.run(app, http="originlock.originkit.uvicorn_tls:TlsHttpToolsProtocol",
                ssl_context_factory=originlock.originkit.ssl.uvicorn_context_factory(...))

or ``--http originlock.originkit.uvicorn_tls:TlsH11Protocol`` on the command line. WebSocket upgrades use
uvicorn's own websocket protocols and do not get the extension.

Python < 3.13 exposes only the leaf of the peer's chain; from 3.13 on the verified chain is used.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["TlsH11Protocol", "TlsHttpToolsProtocol", "tls_extension"]

#: ASGI's ``tls_version`` is the TLS protocol number, e.g. 0x0304 for TLS 1.3.
_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def _pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, Any] | None:
    """The ASGI TLS extension for one connection, or None when the connection is not TLS."""
    if ssl_object is None:
        return None
    chain_der: list[bytes] = []
    verified = getattr(ssl_object, "get_verified_chain", None)  # Python >= 3.13
    if verified is not None:
        chain_der = [bytes(c) if isinstance(c, bytes | bytearray) else c.public_bytes() for c in verified()]
    if not chain_der:
        leaf = ssl_object.getpeercert(binary_form=True)
        chain_der = [leaf] if leaf else []
    chain = [_pem(der) for der in chain_der]
    name = x509.load_der_x509_certificate(chain_der[0]).subject.rfc4514_string() if chain_der else None
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        # With CERT_REQUIRED/OPTIONAL, OpenSSL already failed the handshake on a bad chain.
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


class _WithTls:
    """Per-connection ASGI wrapper adding the extension; the app itself is untouched."""

    def __init__(self, app: Any, ext: dict[str, Any]) -> None:
        self.app = app
        self.ext = ext

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket"):
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": self.ext}
        return await self.app(scope, receive, send)


def _wrap(protocol: Any, transport: asyncio.Transport) -> None:
    ext = tls_extension(transport.get_extra_info("ssl_object"))
    if ext is not None:
        protocol.app = _WithTls(protocol.app, ext)


class TlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the ASGI TLS extension."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _wrap(self, transport)


class TlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus the ASGI TLS extension."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _wrap(self, transport)
