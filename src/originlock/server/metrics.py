"""Prometheus metrics for ``GET /metrics`` on the API listener.

Collectors read their source at scrape time, so there is nothing to keep in sync:

- ``originlock_origin_exposure{zone,hostname,verdict}``: one series per verdict for every monitored
  hostname, ``1`` for its current verdict and ``0`` for the others (so an alert on
  ``originlock_origin_exposure{verdict="OPEN"} == 1`` sees the change, and no series goes stale), from
  the store's ``origin_checks``; every process of a fleet answers the same.
- ``originlock_origin_exposure_checked_timestamp_seconds{zone,hostname}``: when that verdict was observed
  (alert when the monitor stopped: ``time() - ... > 2 * interval``).
- ``originlock_edge_requests_total{zone,status}``: requests the local edge answered.
- ``originlock_origin_pool_*``: the local edge's origin connection pool (``OriginPool.statistics()``),
  when ``serve`` registers it: the process serving the API only, not ``--workers`` children.
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

__all__ = ["CONTENT_TYPE", "VERDICTS", "add_pool_collector", "add_request_collector", "metrics_registry", "render"]

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
    """The edge's origin pool counters, from a ``statistics()`` callable."""

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
        yield GaugeMetricFamily("originlock_origin_pool_keys", "Distinct origin pool keys in use", value=stats.keys)
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
    """``originlock_edge_requests_total{zone,status}`` from the edge's per-process counts."""

    def __init__(self, counts: Mapping[tuple[str, int], int]) -> None:
        self._counts = counts

    def __repr__(self) -> str:
        return "RequestCollector()"

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "originlock_edge_requests", "Requests the edge answered, by zone and status", labels=["zone", "status"]
        )
        for (zone, status), count in sorted(dict(self._counts).items()):
            family.add_metric([zone, str(status)], count)
        yield family


def add_request_collector(registry: CollectorRegistry, counts: Mapping[tuple[str, int], int]) -> None:
    """Export the edge's request counts: ``serve`` passes ``edge.state.request_counts``."""
    registry.register(RequestCollector(counts))


def add_pool_collector(registry: CollectorRegistry, statistics: Callable[[], PoolStatistics]) -> None:
    """Export the edge's pool: ``serve`` passes ``edge.state.pool.statistics``."""
    registry.register(PoolCollector(statistics))


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format, with :data:`CONTENT_TYPE`: the process-wide default registry (process
    metrics, the expiry alerts' ``originlock_certificate_days_to_expiry``) followed by ``registry``."""
    return generate_latest(REGISTRY) + generate_latest(registry)
