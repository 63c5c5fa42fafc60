"""Extension points the pipeline calls. The WAF engine (``originlock.waf``) plugs in here."""

from __future__ import annotations

from typing import Protocol

from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import BodyInspection, Decision
from originlock.proto.events import RequestReceived

__all__ = ["BodyInspection", "WafHook"]


class WafHook(Protocol):
    """Evaluates the zone's rules for one request, before any origin connection is opened.

    Called in the WAF phase (``pipeline/phases.py``) with the parsed request head and the context
    (``ctx.route``, ``ctx.snapshot``, ``ctx.client_ip``, ``ctx.scheme`` are set). Returns
    :data:`~originlock.pipeline.decision.CONTINUE` to let the request through, or a
    :class:`~originlock.pipeline.decision.Respond` (e.g. a 403 block page carrying ``ctx.ray_id``).
    Must be pure and fast: it runs on the event loop for every request. Without a hook, every request
    continues.
    """

    def __call__(self, request: RequestReceived, ctx: RequestContext) -> Decision: ...
