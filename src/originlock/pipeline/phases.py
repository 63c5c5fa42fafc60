"""The request lifecycle: every phase, in the one order the edge runs them.

::

    ACCEPT -> TLS_HANDSHAKE -> REQUEST_HEADERS            (edge/downstream.py: I/O)
      -> ROUTE -> SSL_MODE -> WAF -> ORIGIN_SELECT -> ORIGIN_REQUEST     (run_until_origin: pure)
      -> ORIGIN_CONNECT -> REQUEST_BODY -> RESPONSE_HEADERS -> RESPONSE_BODY   (edge/exchange.py: I/O)
      -> LOG
    ERROR is reachable from every phase and renders the 52x/1xxx page; LOG always runs.

The WAF runs before any origin connection is opened (and before the body is read: a WAF ``Respond``
closes the connection if a body was announced), unlike Pingora where the request body filter runs after
the upstream is connected. ``run_until_origin`` below is the only place the pure phases are sequenced;
``edge/exchange.py`` follows :data:`PHASE_ORDER` for the I/O phases.
"""

from __future__ import annotations

import enum

from originlock.pipeline.builtin.forwarding import origin_request_head
from originlock.pipeline.builtin.origin_select import select_origin
from originlock.pipeline.builtin.ssl_mode import on_ssl_mode
from originlock.pipeline.builtin.zone_router import on_route
from originlock.pipeline.context import PipelineSettings, RequestContext
from originlock.pipeline.decision import Forward, Respond
from originlock.pipeline.hooks import WafHook
from originlock.proto.events import RequestReceived

__all__ = ["PHASE_ORDER", "Phase", "run_until_origin"]


class Phase(enum.Enum):
    ACCEPT = "accept"
    TLS_HANDSHAKE = "tls_handshake"
    REQUEST_HEADERS = "request_headers"
    ROUTE = "route"
    SSL_MODE = "ssl_mode"
    WAF = "waf"
    ORIGIN_SELECT = "origin_select"
    ORIGIN_REQUEST = "origin_request"
    ORIGIN_CONNECT = "origin_connect"
    REQUEST_BODY = "request_body"
    RESPONSE_HEADERS = "response_headers"
    RESPONSE_BODY = "response_body"
    LOG = "log"
    ERROR = "error"


#: Execution order; ERROR is an edge from any phase, not a step.
PHASE_ORDER: tuple[Phase, ...] = tuple(p for p in Phase if p is not Phase.ERROR)


def run_until_origin(
    request: RequestReceived,
    ctx: RequestContext,
    settings: PipelineSettings,
    waf: WafHook | None = None,
) -> Respond | Forward:
    """Run ROUTE, SSL_MODE, WAF, ORIGIN_SELECT and ORIGIN_REQUEST for one request.

    Returns:
        ``Respond`` to answer the visitor now, or ``Forward`` with the origin peer and the request head
        to send it.

    Raises:
        EdgeError: rendered by the ERROR phase (unknown hostname 1001, malformed Host 400, an unusable
        client certificate 525).
    """
    decision = on_route(request, ctx)
    if isinstance(decision, Respond):
        return decision
    decision = on_ssl_mode(request, ctx, settings)
    if isinstance(decision, Respond):
        return decision
    if waf is not None:
        decision = waf(request, ctx)
        if isinstance(decision, Respond):
            return decision
    ctx.peer = peer = select_origin(ctx, settings)
    override = ctx.origin_override
    head = origin_request_head(
        request,
        client_ip=ctx.client_ip,
        scheme=ctx.scheme,
        ray_id=ctx.ray_id,
        host=override.host_header if override is not None else None,
    )
    return Forward(peer, head)
