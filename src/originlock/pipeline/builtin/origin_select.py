"""Phase ORIGIN_SELECT: scheme, port, verification and AOP certificate for the origin connection.

Scheme by SSL mode (spec §6): ``flexible`` always HTTP; ``full``/``strict`` the visitor's scheme;
``origin_pull`` always HTTPS. Ports come from the deployment settings (443/80 by default). The client
certificate is the one the snapshot already chose by AOP precedence (DESIGN.md), presented only on TLS
pulls; when the chosen certificate is unusable the request fails closed with 525 and never falls back
to a weaker certificate.
"""

from __future__ import annotations

from originlock.errors import OriginHandshakeFailed
from originlock.origin.peer import OriginPeer, VerifyMode, trust_id
from originlock.pipeline.context import PipelineSettings, RequestContext
from originlock.snapshot.model import SslMode

__all__ = ["select_origin"]


def select_origin(ctx: RequestContext, settings: PipelineSettings) -> OriginPeer:
    route = ctx.route
    assert route is not None, "ROUTE runs before ORIGIN_SELECT"
    mode = route.ssl_mode
    if mode in (SslMode.OFF, SslMode.FLEXIBLE):
        tls = False
    elif mode is SslMode.ORIGIN_PULL:
        tls = True
    else:
        tls = ctx.scheme == "https"
    if not tls:
        return OriginPeer(route.origin, settings.origin_http_port, False, ctx.host, VerifyMode.NONE)
    if route.client_cert_error is not None:
        raise OriginHandshakeFailed(f"the client certificate for {ctx.host} cannot be used: {route.client_cert_error}")
    strict = mode in (SslMode.STRICT, SslMode.ORIGIN_PULL)
    ca = ctx.snapshot.pki.origin_ca_cert_pem if strict else b""
    return OriginPeer(
        host=route.origin,
        port=settings.origin_https_port,
        tls=True,
        sni=ctx.host,
        verify=VerifyMode.STRICT if strict else VerifyMode.NONE,
        trust=trust_id(ca) if strict else "",
        client_cert=route.client_cert,
        origin_ca_pem=ca,
    )
