"""Phase SSL_MODE: redirects that depend on the visitor's scheme (spec §6).

- ``off``: "redirects any HTTPS request to plaintext HTTP" -> 301 to ``http://``.
- ``always_use_https`` (any other mode): HTTP visitors get a 301 to ``https://`` (Cloudflare's status).
- A visitor TLS version below the hostname's ``min_tls_version`` is refused with 403 (the handshake
  already happened: the certificate is picked by SNI before the hostname's route is known).
"""

from __future__ import annotations

from typing import Final

from originlock.pipeline.context import PipelineSettings, RequestContext
from originlock.pipeline.decision import CONTINUE, Decision, Respond
from originlock.proto.events import RequestReceived
from originlock.proto.target import path_and_query
from originlock.snapshot.model import SslMode

__all__ = ["on_ssl_mode", "redirect"]

_TLS_ORDER: Final = {"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}
#: Compiled, a Final module constant is a static; ``SslMode.OFF`` would be a class attribute lookup per request.
_OFF: Final = SslMode.OFF


def _path_of(target: bytes) -> bytes:
    path, query = path_and_query(target)
    return path + b"?" + query if query else path


def redirect(scheme: str, host: str, port: int, target: bytes) -> Respond:
    """301 to the same path on ``scheme://host[:port]`` (default ports left out)."""
    default = 443 if scheme == "https" else 80
    authority = host if port == default else f"{host}:{port}"
    location = f"{scheme}://{authority}".encode() + _path_of(target)
    return Respond(
        301,
        [(b"Location", location), (b"Content-Type", b"text/plain"), (b"Content-Length", b"0")],
    )


def on_ssl_mode(request: RequestReceived, ctx: RequestContext, settings: PipelineSettings) -> Decision:
    route = ctx.route
    assert route is not None, "ROUTE runs before SSL_MODE"
    if ctx.scheme == "https":
        if route.ssl_mode is _OFF:
            return redirect("http", ctx.host, settings.public_http_port, request.target)
        negotiated = _TLS_ORDER.get(ctx.tls_version or "", "1.3")
        if negotiated < route.min_tls_version:
            return Respond(
                403,
                [(b"Content-Type", b"text/plain")],
                f"TLS {negotiated} is below this hostname's minimum TLS version {route.min_tls_version}\n".encode(),
            )
    elif route.always_use_https and route.ssl_mode is not _OFF:
        return redirect("https", ctx.host, settings.public_https_port, request.target)
    return CONTINUE
