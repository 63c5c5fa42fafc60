"""The edge's WAF activity as the dashboard and ``/metrics`` see it: counts by zone and action, recent events.

:class:`WafRecorder` wraps the edge's WAF hook (a :class:`~originlock.pipeline.hooks.WafHook`): it calls the
real hook, then looks at the verdict the hook left on the request context. Requests no rule matched (the
common case) cost an identity check (compiled with the request path: ``originlock serve`` always wraps its
hook in it, so it runs once per request). For a zone with response rules it also wraps the response
inspection the hook planned, so a response the rules block (or match first) is an event too.
It counts in the process that runs it (``pipeline/waf_activity.py``): with ``--workers N`` each worker
process has its own copy and reports its counts and latest events over its pipe; ``waf_events.py`` adds them
up for the dashboard and ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable

from originlock.pipeline.builtin.waf import EdgeWaf
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import CONTINUE, Decision, ResponseInspection
from originlock.pipeline.hooks import WafHook
from originlock.pipeline.waf_activity import RECENT_EVENTS, WafActivity, WafEvent
from originlock.proto.events import RequestReceived, ResponseReceived
from originlock.waf import NO_MATCH, Verdict

__all__ = ["RECENT_EVENTS", "WafEvent", "WafRecorder"]


def _matched(verdict: Verdict | None) -> bool:
    """Whether a rule matched: the shared no-match verdict (the common case) is told by identity."""
    return verdict is not None and verdict is not NO_MATCH and (verdict.action is not None or bool(verdict.matches))


class WafRecorder:
    """A WAF hook that records what the wrapped hook decided (picklable, like the hook it wraps)."""

    def __init__(self, inner: WafHook, wall_clock: Callable[[], float]) -> None:
        self.inner = inner
        #: The same hook when it is the edge's own (what ``originlock serve`` wraps): called as a method of
        #: a compiled class, natively, where calling it through the WafHook protocol went through Python's
        #: generic call and argument parsing.
        self._edge_waf = inner if isinstance(inner, EdgeWaf) else None
        self.wall_clock = wall_clock
        self.activity = WafActivity()

    def __repr__(self) -> str:
        return f"WafRecorder({self.inner!r}, {self.activity!r})"

    def __reduce__(self) -> tuple[type[WafRecorder], tuple[WafHook, Callable[[], float]]]:
        # --workers pickles the hook; each worker starts with empty counts of its own.
        return (WafRecorder, (self.inner, self.wall_clock))

    def __call__(self, request: RequestReceived, ctx: RequestContext) -> Decision:
        edge_waf = self._edge_waf
        decision = edge_waf.__call__(request, ctx) if edge_waf is not None else self.inner(request, ctx)
        if _matched(ctx.waf):
            self._record(request, ctx)
        inspection = ctx.response_inspection
        if inspection is not None:
            ctx.response_inspection = _RecordedResponse(inspection, self, request, ctx)
        return decision

    def _record(self, request: RequestReceived, ctx: RequestContext) -> None:
        verdict = ctx.waf
        assert verdict is not None
        if verdict.action is not None:
            action, rule_id = verdict.action.value, verdict.rule_id or ""
            phase = verdict.phase.value if verdict.phase is not None else ""
        else:
            first = verdict.matches[0]
            action, rule_id, phase = first.action.value, first.rule_id, first.phase.value
        route = ctx.route
        zone, zone_id = (route.zone_name, route.zone_id) if route is not None else ("", "")
        target = request.target.decode("latin-1")
        event = WafEvent(
            at=self.wall_clock(),
            ray_id=ctx.ray_id,
            zone=zone,
            zone_id=zone_id,
            host=ctx.host,
            method=request.method.decode("latin-1"),
            path=target.partition("?")[0][:200],
            action=action,
            rule_id=rule_id,
            phase=phase,
        )
        self.activity.record(event)


class _RecordedResponse:
    """The response phase's inspection, recorded like the request's: a block, or the first matches of a
    request the request phases did not match (one event per request otherwise)."""

    __slots__ = ("ctx", "inner", "recorder", "request")

    def __init__(
        self, inner: ResponseInspection, recorder: WafRecorder, request: RequestReceived, ctx: RequestContext
    ) -> None:
        self.inner, self.recorder, self.request, self.ctx = inner, recorder, request, ctx

    @property
    def limit(self) -> int:
        return self.inner.limit

    def holds(self, response: ResponseReceived) -> bool:
        return self.inner.holds(response)

    def __call__(self, response: ResponseReceived, body: bytes | None) -> Decision:
        before = self.ctx.waf
        decision = self.inner(response, body)
        after = self.ctx.waf
        if (
            after is not None
            and after is not before
            and (decision is not CONTINUE or (_matched(after) and not _matched(before)))
        ):
            self.recorder._record(self.request, self.ctx)
        return decision
