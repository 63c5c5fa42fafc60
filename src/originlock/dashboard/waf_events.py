"""The edge's WAF activity on ``/metrics``: :class:`WafCollector` exports what the
:class:`~originlock.dashboard.waf_recorder.WafRecorder` (compiled with the request path, which calls it once
per request) counted, by zone and action. The recorder and its events are re-exported from here.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from originlock.dashboard.waf_recorder import RECENT_EVENTS, WafEvent, WafRecorder

__all__ = ["RECENT_EVENTS", "WafCollector", "WafEvent", "WafRecorder"]


class WafCollector(Collector):
    """``originlock_waf_actions_total{zone,action}``: requests a WAF rule matched, by the action taken."""

    def __init__(self, recorder: WafRecorder) -> None:
        self._recorder = recorder

    def __repr__(self) -> str:
        return "WafCollector()"

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "originlock_waf_actions",
            "Requests a WAF rule matched, by zone and action (block, challenge, log, skip...); serve process only",
            labels=["zone", "action"],
        )
        for (zone, action), count in sorted(self._recorder.counts().items()):
            family.add_metric([zone, action], count)
        yield family
