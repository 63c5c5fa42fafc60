"""The pure phases of a request, in their order: ROUTE -> SSL_MODE -> WAF -> ORIGIN_SELECT -> ORIGIN_REQUEST.

The whole lifecycle, with the I/O phases before and after these, is written down once, in
``edge/exchange.py`` (whose functions run it); this is its pure middle, free of I/O so that it can be
tested with plain values. The WAF runs before any origin connection is opened (and before the body is
read: a WAF ``Respond`` closes the connection if a body was announced), unlike Pingora where the request
body filter runs after the upstream is connected.
"""

from __future__ import annotations

from originlock.pipeline.builtin.forwarding import origin_request_head
from originlock.pipeline.builtin.origin_select import select_origin
from originlock.pipeline.builtin.ssl_mode import on_ssl_mode
from originlock.pipeline.builtin.zone_router import on_route
from originlock.pipeline.context import PipelineSettings, RequestContext
from originlock.pipeline.decision import Forward, Respond
from originlock.pipeline.hooks import WafHook
from originlock.proto.events import RequestReceived

__all__ = ["run_until_origin"]


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
