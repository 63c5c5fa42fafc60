"""ASGI middleware: admit a request only when its TLS client certificate is the edge's.

Where the certificate comes from: the ASGI TLS extension, ``scope["extensions"]["tls"]["client_cert_chain"]``
(PEM strings, leaf first). uvicorn does not fill it in (checked on 0.54); run uvicorn with
:mod:`originlock.originkit.uvicorn_tls`'s protocol, which does. Hypercorn fills it in natively. With
:class:`ForwardedCert` the certificate comes from a header instead (see ``forwarded.py``).

On success the :class:`VerifiedEdge` is available to the app as ``scope["extensions"]["originlock.edge"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from originlock.originkit.gate import DENIED_BODY, EdgeGate, ForwardedCert
from originlock.originkit.verify import EdgeTrust, EdgeVerificationError

__all__ = ["ASGIApp", "EdgeOnlyMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("originlock.originkit")


class EdgeOnlyMiddleware:
    """Wrap an ASGI app; ``http`` and ``websocket`` scopes without the edge's certificate get 403.

    Args:
        app: the application.
        trust: CA(s) and optional per-hostname pins.
        forwarded: read the certificate from a header set by a trusted TLS-terminating proxy (off by default).
    """

    def __init__(self, app: ASGIApp, trust: EdgeTrust, *, forwarded: ForwardedCert | None = None) -> None:
        self.app = app
        self.gate = EdgeGate(trust=trust, forwarded=forwarded)
        self._warned_no_tls = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        extensions = scope.get("extensions") or {}
        tls = extensions.get("tls")
        if tls is None and self.gate.forwarded is None and not self._warned_no_tls:
            self._warned_no_tls = True
            logger.warning(
                "the ASGI server gives no TLS client certificate (scope['extensions']['tls']); "
                "run uvicorn with http='originlock.originkit.uvicorn_tls:TlsHttpToolsProtocol'"
            )
        try:
            verified = self.gate.admit(
                peer_chain=(tls or {}).get("client_cert_chain"), host=headers.get("host"), headers=headers
            )
        except EdgeVerificationError as exc:
            client = scope.get("client")
            logger.warning("refused request from %s for host %r: %s", client, headers.get("host"), exc.reason)
            await _deny(scope, send)
            return
        scope = dict(scope)
        scope["extensions"] = {**extensions, "originlock.edge": verified}
        await self.app(scope, receive, send)


async def _deny(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        # Closing before accept makes the server answer the handshake with 403 (ASGI websocket spec).
        await send({"type": "websocket.close", "code": 1008})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(DENIED_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": DENIED_BODY})
