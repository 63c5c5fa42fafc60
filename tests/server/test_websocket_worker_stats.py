"""WebSocket counts in the workers' reports: encoded, decoded, summed like the requests."""

from __future__ import annotations

import pytest

from originlock.edge.worker_stats import ZERO_POOL, WorkerReport, WorkerStatsBook


def test_websocket_counts_round_trip_and_older_reports_count_zero() -> None:
    report = WorkerReport({("a", 101): 3}, ZERO_POOL, (2, 7))
    assert WorkerReport.decode(report.encode()) == report
    older = b'{"requests":[],"pool":{"idle":0,"busy":0,"opened":0,"reused":0,"closed":0,"keys":0}}'
    assert WorkerReport.decode(older).websockets == (0, 0)
    with pytest.raises(ValueError, match="WebSocket"):
        WorkerReport.decode(older[:-1] + b',"websockets":[-1,0]}')


def test_book_sums_open_websockets_of_live_workers_and_keeps_upgrades_of_exited_ones() -> None:
    book = WorkerStatsBook()
    live, exited = book.open_slot(), book.open_slot()
    book.update(live, WorkerReport({}, ZERO_POOL, (2, 5)))
    book.update(exited, WorkerReport({}, ZERO_POOL, (1, 4)))
    assert book.websocket_counts((1, 1)) == (4, 10)
    book.retire(exited)
    assert book.websocket_counts((1, 1)) == (3, 10)  # its open ones closed with it; its upgrades stay counted
