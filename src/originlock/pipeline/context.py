"""Per-request context (Pingora's ``CTX``) and the settings the phases read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from originlock.origin.peer import OriginPeer
from originlock.snapshot.model import Route, Snapshot
from originlock.waf import RouteOverride, Verdict

if TYPE_CHECKING:
    from originlock.pipeline.decision import BodyInspection, ResponseInspection

__all__ = ["PipelineSettings", "RequestContext"]

#: Colo code in ray ids (Cloudflare's ``<16 hex>-<IATA>``); ours names the product, not an airport.
DEFAULT_COLO: Final = "OLK"


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


class RequestContext:
    """What the phases learn about one request; created by the edge, filled in phase by phase.

    A plain class rather than a dataclass: one is made per request, and compiled by mypyc a dataclass
    keeps the interpreted ``__init__`` that ``dataclasses`` generates (≈ 0.4 µs; this one is native).
    """

    __slots__ = (
        "body_inspection",
        "bytes_sent",
        "client_ip",
        "client_port",
        "error_code",
        "error_detail",
        "host",
        "origin_override",
        "origin_retried",
        "origin_reused",
        "origin_rule_ids",
        "peer",
        "ray_id",
        "ray_id_plain",
        "response_inspection",
        "route",
        "scheme",
        "snapshot",
        "sni",
        "started",
        "status",
        "tls_version",
        "waf",
    )

    def __init__(
        self,
        ray_id: str,
        snapshot: Snapshot,
        scheme: str,
        client_ip: str,
        client_port: int,
        started: float,
        sni: str | None = None,
        tls_version: str | None = None,
        ray_id_plain: bool = False,
    ) -> None:
        self.ray_id = ray_id
        #: ``ray_id`` needs no JSON escaping (said by whoever made it, ``RayIds.json_plain``); the access log
        #: escapes it otherwise.
        self.ray_id_plain = ray_id_plain
        #: The snapshot this request started with; it keeps it to the end (live configuration).
        self.snapshot = snapshot
        #: ``http`` or ``https``: how the visitor reached the edge.
        self.scheme = scheme
        self.client_ip = client_ip
        self.client_port = client_port
        #: Monotonic start time in seconds (injected by the edge).
        self.started = started
        #: SNI the visitor sent, if TLS.
        self.sni = sni
        #: TLS version negotiated with the visitor (``TLSv1.3``), if TLS.
        self.tls_version = tls_version
        self.host = ""
        self.route: Route | None = None
        self.peer: OriginPeer | None = None
        self.status = 0
        self.bytes_sent = 0
        #: Error code shown on an error page (52x, 1001, 1016...), 0 when none.
        self.error_code = 0
        self.error_detail = ""
        self.origin_reused = False
        self.origin_retried = False
        #: The WAF's verdict (action, matching rules) when the zone has rules; None when the WAF did not run.
        self.waf: Verdict | None = None
        #: Set by the WAF when its decision waits for the body's first bytes (managed rules); the exchange
        #: reads them and calls it before connecting to the origin.
        self.body_inspection: BodyInspection | None = None
        #: Set by the WAF when the zone's response rules inspect the origin's response (managed rules'
        #: response phase); the exchange then holds the response's start (edge/response_hold.py).
        self.response_inspection: ResponseInspection | None = None
        #: Origin Rules (``http_request_origin``): the merged ``route`` override and the ids of matching rules.
        self.origin_override: RouteOverride | None = None
        self.origin_rule_ids: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"RequestContext(ray_id={self.ray_id!r}, host={self.host!r}, status={self.status})"
