"""``/metrics``' edge collectors export the sums of the serve process and its workers (plain values)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from originlock.edge.worker_stats import WorkerReport, WorkerStatsBook
from originlock.origin.pool_state import PoolStatistics
from originlock.server.metrics import add_edge_collectors


def series(registry: CollectorRegistry) -> dict[str, float]:
    lines = generate_latest(registry).decode().splitlines()
    return {name: float(value) for name, value in (line.rsplit(" ", 1) for line in lines if not line.startswith("#"))}


def test_the_collectors_export_the_whole_edge() -> None:
    book = WorkerStatsBook()
    worker, exited = book.open_slot(), book.open_slot()
    book.update(worker, WorkerReport({("a.test", 200): 4}, PoolStatistics(1, 0, 2, 2, 1, 1)))
    book.update(exited, WorkerReport({("a.test", 200): 1, ("", 530): 2}, PoolStatistics(3, 0, 3, 0, 0, 1)))
    book.retire(exited)
    local_counts = {("a.test", 200): 5}
    local_pool = PoolStatistics(idle=2, busy=1, opened=3, reused=3, closed=0, keys=1)
    registry = CollectorRegistry(auto_describe=False)
    add_edge_collectors(
        registry,
        requests=lambda: book.request_counts(local_counts),
        pool=lambda: book.pool_statistics(local_pool),
        processes=lambda: 1 + book.reporting(),
    )
    assert series(registry) == {
        'originlock_edge_requests_total{status="530",zone=""}': 2.0,
        'originlock_edge_requests_total{status="200",zone="a.test"}': 10.0,
        "originlock_edge_processes": 2.0,
        'originlock_origin_pool_connections{state="idle"}': 3.0,  # the exited worker's 3 are gone
        'originlock_origin_pool_connections{state="busy"}': 1.0,
        "originlock_origin_pool_keys": 2.0,
        "originlock_origin_pool_opened_total": 8.0,  # 3 local + 2 live + 3 exited
        "originlock_origin_pool_reused_total": 5.0,
        "originlock_origin_pool_closed_total": 1.0,
    }
    local_counts[("a.test", 200)] += 1  # read at each scrape
    assert series(registry)['originlock_edge_requests_total{status="200",zone="a.test"}'] == 11.0
