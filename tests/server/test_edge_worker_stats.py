"""The worker-stats book: what ``/metrics`` adds up from ``--workers`` reports, with plain values."""

from __future__ import annotations

import pytest

from originlock.edge.worker_stats import ZERO_POOL, WorkerReport, WorkerStatsBook, add_counts, add_pools
from originlock.origin.pool_state import PoolStatistics
from originlock.pipeline.waf_activity import RECENT_EVENTS, WafEvent


def pool(
    idle: int = 0, busy: int = 0, opened: int = 0, reused: int = 0, closed: int = 0, keys: int = 0
) -> PoolStatistics:
    return PoolStatistics(idle=idle, busy=busy, opened=opened, reused=reused, closed=closed, keys=keys)


def report(requests: dict[tuple[str, int], int], stats: PoolStatistics = ZERO_POOL) -> WorkerReport:
    return WorkerReport(requests, stats)


def test_a_report_survives_its_encoding() -> None:
    sent = report({("a.test", 200): 7, ("", 530): 2}, pool(1, 2, 3, 4, 5, 6))
    line = sent.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # the channel frames one report per line
    assert WorkerReport.decode(line) == sent


def test_of_copies_the_live_counts() -> None:
    live = {("a.test", 200): 1}
    taken = WorkerReport.of(live, ZERO_POOL)
    live[("a.test", 200)] += 1
    assert taken.requests == {("a.test", 200): 1}


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[]",
        b'{"pool": {}}',
        b'{"requests": [["a", "200", 1]], "pool": {"idle":0,"busy":0,"opened":0,"reused":0,"closed":0,"keys":0}}',
        b'{"requests": [["a", 200, -1]], "pool": {"idle":0,"busy":0,"opened":0,"reused":0,"closed":0,"keys":0}}',
        b'{"requests": [], "pool": {"idle":0,"busy":0,"opened":0,"reused":0,"closed":0}}',
        b'{"requests": [], "pool": {"idle":0,"busy":0,"opened":1.5,"reused":0,"closed":0,"keys":0}}',
    ],
)
def test_what_is_not_a_report_is_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        WorkerReport.decode(line)


def test_sums_add_field_by_field() -> None:
    assert add_counts({("a", 200): 1}, {("a", 200): 2, ("b", 404): 3}, {}) == {("a", 200): 3, ("b", 404): 3}
    assert add_pools(pool(1, 2, 3, 4, 5, 6), pool(10, 20, 30, 40, 50, 60)) == pool(11, 22, 33, 44, 55, 66)
    assert add_pools() == ZERO_POOL


def test_the_edge_is_the_local_counts_plus_every_worker() -> None:
    book = WorkerStatsBook()
    one, two = book.open_slot(), book.open_slot()
    book.update(one, report({("a", 200): 5}, pool(idle=1, opened=2, reused=3, keys=1)))
    book.update(two, report({("a", 200): 7, ("", 530): 1}, pool(idle=2, busy=1, opened=3, closed=1, keys=1)))
    local = {("a", 200): 10}
    assert book.request_counts(local) == {("a", 200): 22, ("", 530): 1}
    assert local == {("a", 200): 10}
    assert book.pool_statistics(pool(idle=4, opened=4, reused=10, keys=1)) == pool(7, 1, 9, 13, 1, 3)
    assert book.reporting() == 2


def test_a_newer_report_replaces_the_older_one() -> None:
    book = WorkerStatsBook()
    slot = book.open_slot()
    book.update(slot, report({("a", 200): 5}, pool(opened=1)))
    book.update(slot, report({("a", 200): 8}, pool(opened=1)))  # cumulative: 8 in all, not 13
    assert book.request_counts({}) == {("a", 200): 8}
    assert book.pool_statistics(ZERO_POOL) == pool(opened=1)


def test_a_slot_without_a_report_adds_nothing() -> None:
    book = WorkerStatsBook()
    book.open_slot()
    assert book.request_counts({("a", 200): 1}) == {("a", 200): 1}
    assert book.pool_statistics(pool(idle=1)) == pool(idle=1)
    assert book.reporting() == 0
    assert repr(book) == "WorkerStatsBook(live=1, reporting=0)"


def test_an_exited_worker_keeps_its_counters_and_drops_its_gauges() -> None:
    book = WorkerStatsBook()
    slot = book.open_slot()
    book.update(slot, report({("a", 200): 5}, pool(idle=2, busy=1, opened=3, reused=4, closed=1, keys=2)))
    book.retire(slot)
    book.retire(slot)  # idempotent: end of file, then the serve process closing the pipe
    book.update(slot, report({("a", 200): 99}, pool(opened=99)))  # a retired slot is never updated again
    assert book.request_counts({}) == {("a", 200): 5}
    assert book.pool_statistics(ZERO_POOL) == pool(opened=3, reused=4, closed=1)
    assert book.reporting() == 0


def test_a_restarted_worker_never_makes_a_counter_go_down() -> None:
    book = WorkerStatsBook()
    first = book.open_slot()
    book.update(first, report({("a", 200): 100}, pool(idle=1, opened=10, reused=90, keys=1)))
    before = (book.request_counts({}), book.pool_statistics(ZERO_POOL))
    book.retire(first)  # the process exited ...
    second = book.open_slot()  # ... and its replacement starts from zero on a new pipe
    book.update(second, report({("a", 200): 3}, pool(idle=1, opened=1, reused=2, keys=1)))
    after = (book.request_counts({}), book.pool_statistics(ZERO_POOL))
    assert after == ({("a", 200): 103}, pool(idle=1, opened=11, reused=92, keys=1))
    assert after[0][("a", 200)] >= before[0][("a", 200)]
    assert (after[1].opened, after[1].reused) >= (before[1].opened, before[1].reused)


def test_retired_workers_accumulate() -> None:
    book = WorkerStatsBook()
    for count in (1, 2, 3):
        slot = book.open_slot()
        book.update(slot, report({("a", 200): count, ("b", 502): 1}, pool(closed=count)))
        book.retire(slot)
    assert book.request_counts({("a", 200): 10}) == {("a", 200): 16, ("b", 502): 3}
    assert book.pool_statistics(ZERO_POOL) == pool(closed=6)


def event(at: float, zone: str = "a.test", action: str = "block", ray: str = "") -> WafEvent:
    return WafEvent(
        at, ray or f"ray{at}", zone, "z1", f"www.{zone}", "GET", "/x", action, "r1", "http_request_firewall_custom"
    )


def test_waf_activity_survives_the_encoding() -> None:
    events = (event(3.5), event(2.0, action="log"))
    sent = WorkerReport.of({}, ZERO_POOL, waf={("a.test", "block"): 4, ("a.test", "log"): 1}, waf_events=events)
    assert WorkerReport.decode(sent.encode()) == sent
    quiet = WorkerReport.of({("a.test", 200): 1}, ZERO_POOL)
    assert b"waf" not in quiet.encode()  # nothing matched: the report does not grow
    assert WorkerReport.decode(quiet.encode()).waf == {}


@pytest.mark.parametrize(
    "waf",
    [
        '"waf": [["a", "block", -1]]',
        '"waf": [["a", 3, 1]]',
        '"waf": {"a": 1}',
        '"waf_events": [[1.0, "ray"]]',
        '"waf_events": [["soon", "r", "z", "i", "h", "GET", "/", "block", "1", "p"]]',
        '"waf_events": [[true, "r", "z", "i", "h", "GET", "/", "block", "1", "p"]]',
    ],
)
def test_bad_waf_activity_is_refused(waf: str) -> None:
    line = '{"requests": [], "pool": {"idle":0,"busy":0,"opened":0,"reused":0,"closed":0,"keys":0}, ' + waf + "}"
    with pytest.raises(ValueError):
        WorkerReport.decode(line.encode())


def test_waf_counts_and_events_are_the_whole_edges() -> None:
    book = WorkerStatsBook()
    one, two = book.open_slot(), book.open_slot()
    book.update(one, WorkerReport.of({}, ZERO_POOL, waf={("a.test", "block"): 2}, waf_events=(event(5), event(1))))
    book.update(two, WorkerReport.of({}, ZERO_POOL, waf={("b.test", "log"): 1}, waf_events=(event(4, "b.test"),)))
    local = {("a.test", "block"): 1}
    assert book.waf_counts(local) == {("a.test", "block"): 3, ("b.test", "log"): 1}
    assert [e.at for e in book.waf_events([event(3)])] == [5, 4, 3, 1]  # newest first, every process
    book.retire(one)  # an exited worker's matches still count, and its events are still shown
    book.update(two, WorkerReport.of({}, ZERO_POOL, waf={("b.test", "log"): 2}, waf_events=(event(6, "b.test"),)))
    assert book.waf_counts({}) == {("a.test", "block"): 2, ("b.test", "log"): 2}
    assert [e.at for e in book.waf_events([])] == [6, 5, 1]


def test_the_events_shown_are_the_newest_of_all_processes() -> None:
    book = WorkerStatsBook()
    slot = book.open_slot()
    theirs = tuple(event(float(2 * n + 1)) for n in reversed(range(RECENT_EVENTS)))  # odd instants, newest first
    book.update(slot, WorkerReport.of({}, ZERO_POOL, waf={("a.test", "block"): RECENT_EVENTS}, waf_events=theirs))
    ours = [event(float(2 * n)) for n in reversed(range(RECENT_EVENTS))]  # even instants
    shown = book.waf_events(ours)
    assert len(shown) == RECENT_EVENTS
    assert [e.at for e in shown] == list(range(2 * RECENT_EVENTS - 1, -1, -1))[:RECENT_EVENTS]
