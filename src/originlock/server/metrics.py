"""Prometheus metrics for ``GET /metrics`` on the API listener.

Collectors read their source at scrape time, so there is nothing to keep in sync:

- ``originlock_origin_exposure{zone,hostname,verdict}``: one series per verdict for every monitored
  hostname, ``1`` for its current verdict and ``0`` for the others (so an alert on
  ``originlock_origin_exposure{verdict="OPEN"} == 1`` sees the change, and no series goes stale), from
  the store's ``origin_checks``; every process of a fleet answers the same.
- ``originlock_origin_exposure_checked_timestamp_seconds{zone,hostname}``: when that verdict was observed
  (alert when the monitor stopped: ``time() - ... > 2 * interval``).
- ``originlock_edge_requests_total{zone,status}``: requests the edge answered, every ``--workers`` process
  included: the serve process's live counts plus what each worker last reported (about once a second), plus
  the final counts of workers that have exited (``edge/worker_stats.py``), so the sum never goes down.
- ``originlock_origin_pool_*``: the origin connection pools (``OriginPool.statistics()``), summed over the
  edge processes: counters include exited workers, gauges (connections, keys) live processes only.
- ``originlock_edge_processes``: edge processes included in those sums (the serve process and every worker
  that has reported and not exited): alert on it being below ``--workers``.
- ``originlock_edge_websockets_active`` and ``originlock_edge_websocket_upgrades_total``: WebSockets relayed
  by the edge processes, summed like the requests (exited workers' upgrades kept, their open ones dropped).
- whatever is in prometheus_client's process-wide registry (``process_*``, the expiry alerts' gauge).

Our collectors live in a registry per app rather than the process-wide one, because the exposure
collector belongs to one store and tests build many apps in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from originlock.origin.pool_state import PoolStatistics
from originlock.store.db import Store
from originlock.store.origin_checks import list_checks

__all__ = ["CONTENT_TYPE", "VERDICTS", "add_edge_collectors", "metrics_registry", "render"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Every verdict the checker can give (``originkit.report.Verdict``), exported for each hostname.
VERDICTS = ("LOCKED", "OPEN", "MISCONFIGURED", "UNREACHABLE")


class ExposureCollector(Collector):
    """``originlock_origin_exposure`` and its timestamp, read from the store at each scrape."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __repr__(self) -> str:
        return "ExposureCollector()"

    def collect(self) -> Iterator[Metric]:
        with self._store.read() as conn:
            checks = list_checks(conn)
        exposure = GaugeMetricFamily(
            "originlock_origin_exposure",
            "1 for the origin's current verdict from the exposure monitor, 0 for the other verdicts",
            labels=["zone", "hostname", "verdict"],
        )
        checked = GaugeMetricFamily(
            "originlock_origin_exposure_checked_timestamp_seconds",
            "When the exposure monitor last checked the origin (Unix time)",
            labels=["zone", "hostname"],
        )
        for check in checks:
            for verdict in VERDICTS:
                exposure.add_metric(
                    [check.zone_name, check.hostname, verdict], 1.0 if check.verdict == verdict else 0.0
                )
            checked.add_metric([check.zone_name, check.hostname], check.checked_at.timestamp())
        yield exposure
        yield checked


class PoolCollector(Collector):
    """The edge's origin pool counters, from a ``statistics()`` callable (summed over the edge processes)."""

    def __init__(self, statistics: Callable[[], PoolStatistics]) -> None:
        self._statistics = statistics

    def __repr__(self) -> str:
        return "PoolCollector()"

    def collect(self) -> Iterator[Metric]:
        stats = self._statistics()
        connections = GaugeMetricFamily(
            "originlock_origin_pool_connections", "Origin connections held by the edge, by state", labels=["state"]
        )
        connections.add_metric(["idle"], stats.idle)
        connections.add_metric(["busy"], stats.busy)
        yield connections
        yield GaugeMetricFamily(
            "originlock_origin_pool_keys", "Origin pool keys in use (distinct per edge process)", value=stats.keys
        )
        for name, value, doc in (
            ("opened", stats.opened, "Origin connections dialled"),
            ("reused", stats.reused, "Requests served on a reused origin connection"),
            ("closed", stats.closed, "Origin connections closed"),
        ):
            yield CounterMetricFamily(f"originlock_origin_pool_{name}", doc, value=value)


def metrics_registry(store: Store) -> CollectorRegistry:
    """A registry of our own (not the process-wide default) holding the exposure collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExposureCollector(store))
    return registry


class RequestCollector(Collector):
    """``originlock_edge_requests_total{zone,status}`` and ``originlock_edge_processes``, from callables."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, int], int]], processes: Callable[[], int]) -> None:
        self._counts = counts
        self._processes = processes

    def __repr__(self) -> str:
        return "RequestCollector()"

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "originlock_edge_requests", "Requests the edge answered, by zone and status", labels=["zone", "status"]
        )
        for (zone, status), count in sorted(self._counts().items()):
            family.add_metric([zone, str(status)], count)
        yield family
        yield GaugeMetricFamily(
            "originlock_edge_processes",
            "Edge processes whose counts are included: the serve process and the workers reporting",
            value=self._processes(),
        )


class WebSocketCollector(Collector):
    """``originlock_edge_websockets_active`` and ``originlock_edge_websocket_upgrades_total``, from a callable
    returning (open relays, 101s relayed) (edge/websocket.py)."""

    def __init__(self, counts: Callable[[], tuple[int, int]]) -> None:
        self._counts = counts

    def __repr__(self) -> str:
        return "WebSocketCollector()"

    def collect(self) -> Iterator[Metric]:
        active, upgrades = self._counts()
        yield GaugeMetricFamily("originlock_edge_websockets_active", "WebSockets being relayed now", value=active)
        yield CounterMetricFamily(
            "originlock_edge_websocket_upgrades", "WebSocket handshakes the origin accepted (101)", value=upgrades
        )


def add_edge_collectors(
    registry: CollectorRegistry,
    *,
    requests: Callable[[], Mapping[tuple[str, int], int]],
    pool: Callable[[], PoolStatistics],
    processes: Callable[[], int],
    websockets: Callable[[], tuple[int, int]] | None = None,
) -> None:
    """Export the whole edge, read at each scrape. ``serve`` passes the worker-stats book's sums with the
    local edge (``WorkerStatsBook.request_counts(state.request_counts)``, ``.pool_statistics(...)``).

    Args:
        registry: the app's registry (``app.state.metrics``).
        requests: requests answered by (zone, status), cumulative.
        pool: the origin pools' statistics, summed.
        processes: how many edge processes the two others include.
        websockets: (WebSockets open, upgrades relayed), summed over the edge processes.
    """
    registry.register(RequestCollector(requests, processes))
    registry.register(PoolCollector(pool))
    if websockets is not None:
        registry.register(WebSocketCollector(websockets))


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format, with :data:`CONTENT_TYPE`: the process-wide default registry (process
    metrics, the expiry alerts' ``originlock_certificate_days_to_expiry``) followed by ``registry``."""
    return generate_latest(REGISTRY) + generate_latest(registry)
