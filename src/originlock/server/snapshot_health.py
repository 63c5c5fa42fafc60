"""What a node says about the snapshot it serves: ``/metrics`` series and ``GET /healthz/snapshot``.

- ``originlock_snapshot_generation``: the store generation the edge serves;
- ``originlock_snapshot_stale_seconds``: seconds since the node last knew that generation was current
  (a poll or a rebuild succeeded); grows while the store is unreachable; alert on it above a minute;
- ``originlock_snapshot_from_disk``: 1 while serving the last-known-good copy the node started from;
- ``originlock_snapshot_rebuilds_total{kind="zones"|"full"}`` and ``originlock_snapshot_rebuild_seconds_total``
  (rate the two for the mean rebuild time), ``originlock_snapshot_last_rebuild_seconds``;
- ``originlock_snapshot_routes``: proxied hostnames in the snapshot;
- ``originlock_snapshot_change_delay_seconds`` (sum and count) and
  ``originlock_snapshot_last_change_delay_seconds``: from a write's commit (the writer's clock) to this
  node serving it; the fleet's propagation time, skewed by the difference between the nodes' clocks.

``/healthz/snapshot`` answers the same as JSON (200 while the edge serves anything, from the store or
from disk: a load balancer should keep sending traffic to an edge that can serve), with the stages of
the last few changes (``recent_changes``: notified, queued, compile, swap and total milliseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from originlock.server.snapshot_stats import SourceStatistics

if TYPE_CHECKING:  # the edge role answers without FastAPI (server/health_http.py)
    from fastapi import FastAPI

__all__ = ["SnapshotCollector", "add_snapshot_health", "snapshot_document", "snapshot_json"]

StatsFn = Callable[[], SourceStatistics | None]


def snapshot_json(stats: SourceStatistics) -> dict[str, Any]:
    return {
        "generation": stats.generation,
        "stale_seconds": round(stats.stale_seconds(time.time()), 3),
        "from_disk": stats.from_disk,
        "routes": stats.routes,
        "zones": stats.zones,
        "rebuilds": stats.rebuilds,
        "full_rebuilds": stats.full_rebuilds,
        "last_rebuild_seconds": round(stats.last_rebuild_seconds, 4),
        "last_change_delay_seconds": round(stats.last_change_delay_seconds, 4),
        "recent_changes": [trace.stages_ms() for trace in stats.recent_changes],
    }


class SnapshotCollector(Collector):
    def __init__(self, stats: StatsFn) -> None:
        self._stats = stats

    def __repr__(self) -> str:
        return "SnapshotCollector()"

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        if stats is None:
            return
        yield GaugeMetricFamily(
            "originlock_snapshot_generation", "Store generation the edge serves", value=stats.generation
        )
        yield GaugeMetricFamily(
            "originlock_snapshot_stale_seconds",
            "Seconds since the served generation was last confirmed current with the store",
            value=stats.stale_seconds(time.time()),
        )
        yield GaugeMetricFamily(
            "originlock_snapshot_from_disk",
            "1 while serving the last-known-good snapshot from disk",
            value=1.0 if stats.from_disk else 0.0,
        )
        rebuilds = CounterMetricFamily("originlock_snapshot_rebuilds", "Snapshot rebuilds, by kind", labels=["kind"])
        rebuilds.add_metric(["zones"], stats.rebuilds - stats.full_rebuilds)
        rebuilds.add_metric(["full"], stats.full_rebuilds)
        yield rebuilds
        yield CounterMetricFamily(
            "originlock_snapshot_rebuild_seconds", "Time spent rebuilding snapshots", value=stats.rebuild_seconds_total
        )
        yield GaugeMetricFamily(
            "originlock_snapshot_last_rebuild_seconds", "Duration of the last rebuild", value=stats.last_rebuild_seconds
        )
        yield GaugeMetricFamily("originlock_snapshot_routes", "Proxied hostnames in the snapshot", value=stats.routes)
        delay = SummaryMetricFamily(
            "originlock_snapshot_change_delay_seconds",
            "From a change's commit (its writer's clock) to this node serving it",
            count_value=stats.changes_timed,
            sum_value=stats.change_delay_seconds_total,
        )
        yield delay
        yield GaugeMetricFamily(
            "originlock_snapshot_last_change_delay_seconds",
            "From the last change's commit to this node serving it",
            value=stats.last_change_delay_seconds,
        )


def stats_of(source: object) -> StatsFn:
    """A statistics callable for any snapshot source (None for sources that keep none)."""
    statistics = getattr(source, "statistics", None)
    return statistics if callable(statistics) else (lambda: None)


def snapshot_document(registry: CollectorRegistry, source: object) -> Callable[[], tuple[int, dict[str, Any]]]:
    """Add the collector to ``registry``; the status and body of ``GET /healthz/snapshot``, as a callable."""
    stats = stats_of(source)
    registry.register(SnapshotCollector(stats))

    def document() -> tuple[int, dict[str, Any]]:
        current = stats()
        if current is None:
            return 503, {"serving": False}
        return 200, {"serving": True, **snapshot_json(current)}

    return document


def add_snapshot_health(app: FastAPI, registry: CollectorRegistry, source: object) -> None:
    """Add the collector to ``registry`` and ``GET /healthz/snapshot`` to ``app``."""
    from fastapi.responses import JSONResponse

    document = snapshot_document(registry, source)

    @app.get("/healthz/snapshot", include_in_schema=False)
    def snapshot_health() -> JSONResponse:
        status, body = document()
        return JSONResponse(body, status_code=status)
