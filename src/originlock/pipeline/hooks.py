"""Extension points the pipeline calls. The WAF engine (``originlock.waf``) plugs in here."""

from __future__ import annotations

from typing import Protocol

from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import Decision
from originlock.proto.events import RequestReceived

__all__ = ["BodyInspection", "WafHook"]


class WafHook(Protocol):
    """Evaluates the zone's rules for one request, before any origin connection is opened.

    Called in :data:`~originlock.pipeline.phases.Phase.WAF` with the parsed request head and the context
    (``ctx.route``, ``ctx.snapshot``, ``ctx.client_ip``, ``ctx.scheme`` are set). Returns
    :data:`~originlock.pipeline.decision.CONTINUE` to let the request through, or a
    :class:`~originlock.pipeline.decision.Respond` (e.g. a 403 block page carrying ``ctx.ray_id``).
    Must be pure and fast: it runs on the event loop for every request. Without a hook, every request
    continues.
    """

    def __call__(self, request: RequestReceived, ctx: RequestContext) -> Decision: ...


class BodyInspection(Protocol):
    """A WAF decision that needs the start of the request body (managed rules inspect it).

    Set on ``ctx.body_inspection`` by the WAF hook; the exchange reads at most ``limit`` body bytes
    (plus the rest of the last chunk received) before connecting to the origin, calls it with them, and
    then either answers with the returned ``Respond`` or forwards the buffered bytes and streams the rest.
    """

    @property
    def limit(self) -> int: ...

    def __call__(self, body: bytes) -> Decision: ...
