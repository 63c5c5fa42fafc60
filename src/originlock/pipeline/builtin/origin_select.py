"""Phase ORIGIN_SELECT: scheme, port, verification and AOP certificate for the origin connection.

Scheme by SSL mode (spec §6): ``flexible`` always HTTP; ``full``/``strict`` the visitor's scheme;
``origin_pull`` always HTTPS. Ports come from the deployment settings (443/80 by default). The client
certificate is the one the snapshot already chose by AOP precedence (snapshot/aop.py), presented only on TLS
pulls; when the chosen certificate is unusable the request fails closed with 525 and never falls back
to a weaker certificate. Strict pulls carry the snapshot's revoked Origin CA certificates (refused after
the handshake, 526) and their id (in the pool key). Origin Rules (``route`` action) override the
address, port and SNI.
"""

from __future__ import annotations

from typing import Final

from originlock.cache import BoundedCache
from originlock.errors import ClientCertUnusable
from originlock.origin.peer import NO_REVOCATIONS, OriginPeer, VerifyMode, trust_id
from originlock.pipeline.context import PipelineSettings, RequestContext
from originlock.snapshot.model import Route, SslMode

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


class _PeerCache:
    """Peers already built for one (snapshot, settings) pair, by route identity, scheme and hostname.

    Without Origin Rules overrides a peer depends only on the route, the visitor's scheme, the hostname
    (the SNI; a wildcard route serves many), the snapshot's origin CA and revoked Origin CA certificates,
    and the settings' ports: the same for every request of a hostname until the snapshot changes.
    Building it (and its trust id and pool key) per request was 5-6 % of edge samples
    (docs/performance.md). Snapshots are immutable, and the cache is dropped whenever another snapshot or
    settings object is seen, so a peer never outlives the configuration it was made from; the route
    itself is stored and compared with ``is``, so a recycled ``id()`` cannot match.
    """

    __slots__ = ("last_host", "last_peer", "last_route", "last_scheme", "peers", "settings", "snapshot")

    def __init__(self) -> None:
        self.snapshot: object = None
        self.settings: object = None
        #: One per served hostname and scheme in practice; many wildcard hostnames start it over.
        self.peers = BoundedCache[tuple[int, str, str], tuple[Route, OriginPeer]](4096)
        #: The peer handed out last, and for which route (by identity), scheme and hostname: requests in a
        #: row usually ask for the same, and the lookup built and hashed a tuple with the request's new
        #: hostname string (≈ 1k instructions) where this compares two strings.
        self.last_route: Route | None = None
        self.last_scheme = self.last_host = ""
        self.last_peer: OriginPeer | None = None

    def get(self, ctx: RequestContext, settings: PipelineSettings, route: Route) -> OriginPeer:
        if ctx.snapshot is not self.snapshot or settings is not self.settings:
            self.snapshot, self.settings = ctx.snapshot, settings
            self.peers.clear()
            self.last_route = None
        else:
            peer = self.last_peer
            if (
                route is self.last_route
                and peer is not None
                and ctx.host == self.last_host
                and ctx.scheme == self.last_scheme
            ):
                return peer
        key = (id(route), ctx.scheme, ctx.host)
        cached = self.peers.get(key)
        if cached is not None and cached[0] is route:
            found = cached[1]
        else:
            found = self.peers.put(key, (route, _build(ctx, settings, route)))[1]
        self.last_route, self.last_scheme, self.last_host, self.last_peer = route, ctx.scheme, ctx.host, found
        return found


_CACHE: Final = _PeerCache()


def select_origin(ctx: RequestContext, settings: PipelineSettings) -> OriginPeer:
    route = ctx.route
    assert route is not None, "ROUTE runs before ORIGIN_SELECT"
    if route.client_cert_error is not None and _uses_tls(route.ssl_mode, ctx.scheme):
        raise ClientCertUnusable(f"the client certificate for {ctx.host} cannot be used: {route.client_cert_error}")
    if ctx.origin_override is not None:
        return _build(ctx, settings, route)
    return _CACHE.get(ctx, settings, route)


def _uses_tls(mode: SslMode, scheme: str) -> bool:
    if mode in (SslMode.OFF, SslMode.FLEXIBLE):
        return False
    return mode is SslMode.ORIGIN_PULL or scheme == "https"


def _build(ctx: RequestContext, settings: PipelineSettings, route: Route) -> OriginPeer:
    mode = route.ssl_mode
    if not _uses_tls(mode, ctx.scheme):
        address, port, sni = _overridden(ctx, settings.origin_http_port)
        return OriginPeer(address, port, False, sni, VerifyMode.NONE)
    strict = mode in (SslMode.STRICT, SslMode.ORIGIN_PULL)
    pki = ctx.snapshot.pki
    ca = pki.origin_ca_cert_pem if strict else b""
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
        # Full does not validate the origin certificate "in any way" (spec §6): nor does it check revocation.
        revoked=pki.revoked_origin_certs if strict else NO_REVOCATIONS,
        revocation=pki.revocation_id if strict else "",
    )
