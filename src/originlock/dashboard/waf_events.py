"""The edge's WAF activity as the dashboard and ``/metrics`` see it: what the
:class:`~originlock.dashboard.waf_recorder.WafRecorder` (compiled with the request path, which calls it once
per request) counted in the serve process, plus what every ``--workers`` process reported
(:class:`EdgeWafActivity`), and :class:`WafCollector` exporting the counts by zone and action. The recorder
and its events are re-exported from here.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from originlock.dashboard.waf_recorder import RECENT_EVENTS, WafEvent, WafRecorder
from originlock.edge.worker_stats import WorkerStatsBook
from originlock.pipeline.waf_activity import WafActivity, WafKey

__all__ = ["RECENT_EVENTS", "EdgeWafActivity", "WafCollector", "WafEvent", "WafRecorder"]


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
