"""Per-request context (Pingora's ``CTX``) and the settings the phases read."""

from __future__ import annotations

from dataclasses import dataclass

from originlock.origin.peer import OriginPeer
from originlock.snapshot.model import Route, Snapshot
from originlock.waf import RouteOverride, Verdict

__all__ = ["PipelineSettings", "RequestContext"]

#: Colo code in ray ids (Cloudflare's ``<16 hex>-<IATA>``); ours names the product, not an airport.
DEFAULT_COLO = "OLK"


@dataclass(frozen=True)
class PipelineSettings:
    """What the pure phases need from the edge configuration."""

    #: Origin port for HTTPS pulls (``--origin-https-port``); Cloudflare's default 443.
    origin_https_port: int = 443
    #: Origin port for plain-HTTP pulls (``--origin-http-port``); Cloudflare's default 80.
    origin_http_port: int = 80
    #: Public ports used in redirects (80/443 are left out of the Location URL).
    public_http_port: int = 80
    public_https_port: int = 443
    colo: str = DEFAULT_COLO

    def __post_init__(self) -> None:
        for port in (self.origin_https_port, self.origin_http_port, self.public_http_port, self.public_https_port):
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is out of range")


@dataclass(slots=True)
class RequestContext:
    """What the phases learn about one request; created by the edge, filled in phase by phase."""

    ray_id: str
    #: The snapshot this request started with; it keeps it to the end (live configuration).
    snapshot: Snapshot
    #: ``http`` or ``https``: how the visitor reached the edge.
    scheme: str
    client_ip: str
    client_port: int
    #: Monotonic start time in seconds (injected by the edge).
    started: float
    #: SNI the visitor sent, if TLS.
    sni: str | None = None
    #: TLS version negotiated with the visitor (``TLSv1.3``), if TLS.
    tls_version: str | None = None
    host: str = ""
    route: Route | None = None
    peer: OriginPeer | None = None
    status: int = 0
    bytes_sent: int = 0
    #: Error code shown on an error page (52x, 1001, 1016...), 0 when none.
    error_code: int = 0
    error_detail: str = ""
    origin_reused: bool = False
    origin_retried: bool = False
    #: The WAF's verdict (action, matching rules) when the zone has rules; None when the WAF did not run.
    waf: Verdict | None = None
    #: Origin Rules (``http_request_origin``): the merged ``route`` override and the ids of matching rules.
    origin_override: RouteOverride | None = None
    origin_rule_ids: tuple[str, ...] = ()
