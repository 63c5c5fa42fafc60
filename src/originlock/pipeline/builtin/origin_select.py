"""Phase ORIGIN_SELECT: scheme, port, verification and AOP certificate for the origin connection.

Scheme by SSL mode (spec §6): ``flexible`` always HTTP; ``full``/``strict`` the visitor's scheme;
``origin_pull`` always HTTPS. Ports come from the deployment settings (443/80 by default). The client
certificate is the one the snapshot already chose by AOP precedence (DESIGN.md), presented only on TLS
pulls; when the chosen certificate is unusable the request fails closed with 525 and never falls back
to a weaker certificate. Origin Rules (``route`` action) override the address, port and SNI.
"""

from __future__ import annotations

from originlock.errors import ClientCertUnusable
from originlock.origin.peer import OriginPeer, VerifyMode, trust_id
from originlock.pipeline.context import PipelineSettings, RequestContext
from originlock.snapshot.model import SslMode

__all__ = ["select_origin"]


def _overridden(ctx: RequestContext, port: int) -> tuple[str, int, str]:
    """Origin address, port and SNI after Origin Rules (``ctx.origin_override``, set in the WAF phase).

    ``origin.host`` is a hostname whose proxied record gives the address (Cloudflare: a DNS record on the
    same account); a name the snapshot does not serve is resolved as a CNAME origin would be. A
    ``host_header`` override also sets the SNI unless ``sni.value`` is given (Cloudflare's documented
    behaviour). The pool key is made from these values, so connections never mix across overrides.
    """
    route = ctx.route
    assert route is not None
    override = ctx.origin_override
    if override is None:
        return route.origin, port, ctx.host
    address = route.origin
    if override.origin_host is not None:
        target = ctx.snapshot.route_for(override.origin_host)
        address = target.origin if target is not None else override.origin_host
    sni = override.sni or override.host_header or ctx.host
    return address, override.origin_port or port, sni


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
        address, port, sni = _overridden(ctx, settings.origin_http_port)
        return OriginPeer(address, port, False, sni, VerifyMode.NONE)
    if route.client_cert_error is not None:
        raise ClientCertUnusable(f"the client certificate for {ctx.host} cannot be used: {route.client_cert_error}")
    strict = mode in (SslMode.STRICT, SslMode.ORIGIN_PULL)
    ca = ctx.snapshot.pki.origin_ca_cert_pem if strict else b""
    address, port, sni = _overridden(ctx, settings.origin_https_port)
    return OriginPeer(
        host=address,
        port=port,
        tls=True,
        sni=sni,
        verify=VerifyMode.STRICT if strict else VerifyMode.NONE,
        trust=trust_id(ca) if strict else "",
        client_cert=route.client_cert,
        origin_ca_pem=ca,
        fips=route.fips,
    )
