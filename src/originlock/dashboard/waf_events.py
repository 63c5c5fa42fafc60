"""The edge's WAF activity as the dashboard and ``/metrics`` see it: counts by zone and action, recent events.

:class:`WafRecorder` wraps the edge's WAF hook (a :class:`~originlock.pipeline.hooks.WafHook`): it calls the
real hook, then looks at the verdict the hook left on the request context. Requests no rule matched (the
common case) cost one attribute check. For a zone with response rules it also wraps the response inspection
the hook planned, so a response the rules block (or match first) is an event too.
It counts in the process that runs it (``pipeline/waf_activity.py``): with ``--workers N`` each worker
process has its own copy and reports its counts and latest events over its pipe, and :class:`EdgeWafActivity`
adds them to the serve process's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from originlock.edge.worker_stats import WorkerStatsBook
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import CONTINUE, Decision, ResponseInspection
from originlock.pipeline.hooks import WafHook
from originlock.pipeline.waf_activity import RECENT_EVENTS, WafActivity, WafEvent, WafKey
from originlock.proto.events import RequestReceived, ResponseReceived

__all__ = ["RECENT_EVENTS", "EdgeWafActivity", "WafCollector", "WafEvent", "WafRecorder"]


class WafRecorder:
    """A WAF hook that records what the wrapped hook decided (picklable, like the hook it wraps)."""

    def __init__(self, inner: WafHook, wall_clock: Callable[[], float]) -> None:
        self.inner = inner
        self.wall_clock = wall_clock
        self.activity = WafActivity()

    def __repr__(self) -> str:
        return f"WafRecorder({self.inner!r}, {self.activity!r})"

    def __reduce__(self) -> tuple[type[WafRecorder], tuple[WafHook, Callable[[], float]]]:
        # --workers pickles the hook; each worker starts with empty counts of its own.
        return (WafRecorder, (self.inner, self.wall_clock))

    def __call__(self, request: RequestReceived, ctx: RequestContext) -> Decision:
        decision = self.inner(request, ctx)
        verdict = ctx.waf
        if verdict is not None and (verdict.action is not None or verdict.matches):
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


class EdgeWafActivity:
    """The whole edge's WAF activity: the serve process's recorder plus what every ``--workers`` process
    reported (counts summed, the newest events of all)."""

    def __init__(self, local: WafActivity, workers: WorkerStatsBook | None = None) -> None:
        self._local = local
        self._workers = workers

    def __repr__(self) -> str:
        return f"EdgeWafActivity({self._local!r}, workers={self._workers!r})"

    def counts(self) -> dict[WafKey, int]:
        """Matched requests so far, by (zone name, action)."""
        local = self._local.counts()
        return local if self._workers is None else self._workers.waf_counts(local)

    def recent(self) -> list[WafEvent]:
        """The latest events, newest first."""
        local = self._local.recent()
        return local if self._workers is None else self._workers.waf_events(local)


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
        seen_before = before is not None and (before.action is not None or bool(before.matches))
        matched = after is not None and (after.action is not None or bool(after.matches))
        if after is not None and after is not before and (decision is not CONTINUE or (matched and not seen_before)):
            self.recorder._record(self.request, self.ctx)
        return decision


class WafCollector(Collector):
    """``originlock_waf_actions_total{zone,action}``: requests a WAF rule matched, by the action taken."""

    def __init__(self, activity: EdgeWafActivity) -> None:
        self._activity = activity

    def __repr__(self) -> str:
        return "WafCollector()"

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "originlock_waf_actions",
            "Requests a WAF rule matched, by zone and action (block, challenge, log, skip...)",
            labels=["zone", "action"],
        )
        for (zone, action), count in sorted(self._activity.counts().items()):
            family.add_metric([zone, action], count)
        yield family
