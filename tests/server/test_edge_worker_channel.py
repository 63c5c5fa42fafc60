"""The pipe from a ``--workers`` process to the serve process, both ends in one event loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection

import pytest

from originlock.edge.worker_channel import WorkerReporter, WorkerReports
from originlock.edge.worker_stats import ZERO_POOL, WorkerReport, WorkerStatsBook
from originlock.origin.pool_state import PoolStatistics


def pipe() -> tuple[Connection, Connection]:
    reader, writer = multiprocessing.get_context("spawn").Pipe(duplex=False)
    return reader, writer


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_reports_reach_the_book_and_the_last_one_stays() -> None:
    book = WorkerStatsBook()
    reports = WorkerReports(book)
    reader, writer = pipe()
    await reports.attach(reader)
    gone: list[bool] = []
    reporter = await WorkerReporter.open(writer, lambda: gone.append(True))
    assert repr(reporter) == "WorkerReporter(open)"
    assert reporter.send(WorkerReport({("a", 200): 1}, ZERO_POOL))
    await wait_for(lambda: book.request_counts({}) == {("a", 200): 1})
    assert book.reporting() == 1
    final = WorkerReport({("a", 200): 5}, PoolStatistics(idle=1, busy=0, opened=2, reused=3, closed=1, keys=1))
    await reporter.aclose(final)  # the final report, then end of file: the slot is retired with it
    assert not reporter.send(final)
    await reports.aclose()
    assert book.reporting() == 0
    assert book.request_counts({}) == {("a", 200): 5}
    assert book.pool_statistics(ZERO_POOL) == PoolStatistics(idle=0, busy=0, opened=2, reused=3, closed=1, keys=0)
    assert gone == []  # closing our own end is not the serve process going away


async def test_the_periodic_report_reads_live_values() -> None:
    book = WorkerStatsBook()
    reports = WorkerReports(book)
    reader, writer = pipe()
    await reports.attach(reader)
    reporter = await WorkerReporter.open(writer, lambda: None)
    live = {("a", 200): 0}
    task = asyncio.create_task(reporter.run(lambda: WorkerReport.of(live, ZERO_POOL), interval=0.01))
    try:
        await wait_for(lambda: book.request_counts({}) == {("a", 200): 0})
        live[("a", 200)] = 3
        await wait_for(lambda: book.request_counts({}) == {("a", 200): 3})
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await reporter.aclose(WorkerReport.of(live, ZERO_POOL))
        await reports.aclose()


async def test_a_report_split_over_reads_and_a_bad_line_are_handled(caplog: pytest.LogCaptureFixture) -> None:
    book = WorkerStatsBook()
    reports = WorkerReports(book)
    reader, writer = pipe()
    await reports.attach(reader)
    line = WorkerReport({("a", 200): 2}, ZERO_POOL).encode()
    os.write(writer.fileno(), line[:10])
    await asyncio.sleep(0.05)
    assert book.reporting() == 0  # half a report is not a report
    os.write(writer.fileno(), line[10:])
    await wait_for(lambda: book.reporting() == 1)
    with caplog.at_level(logging.WARNING, logger="originlock.edge"):
        os.write(writer.fileno(), b"garbage\n")
        await wait_for(lambda: "could not be read" in caplog.text)
    assert book.request_counts({}) == {("a", 200): 2}  # the last good report stays
    writer.close()
    await reports.aclose()
    assert book.reporting() == 0


async def test_a_worker_hears_when_the_serve_process_is_gone() -> None:
    reports = WorkerReports(WorkerStatsBook())
    reader, writer = pipe()
    await reports.attach(reader)
    gone = asyncio.Event()
    reporter = await WorkerReporter.open(writer, gone.set)
    await reports.aclose(timeout=0)  # the serve process's end closes while the worker still runs
    async with asyncio.timeout(5):
        await gone.wait()
    assert not reporter.send(WorkerReport({}, ZERO_POOL))
    await reporter.aclose(WorkerReport({}, ZERO_POOL))  # nothing to flush into: returns at once


async def test_a_worker_never_queues_more_than_one_unsent_report() -> None:
    reader, writer = pipe()  # nobody reads: the pipe fills up
    reporter = await WorkerReporter.open(writer, lambda: None)
    big = WorkerReport({(f"zone-{n}.test", 200): n for n in range(5000)}, ZERO_POOL)
    sent = [reporter.send(big) for _ in range(10)]
    assert sent[0] and not all(sent)  # once the kernel's buffer is full, reports are skipped, not queued
    await reporter.aclose(big, timeout=0.1)  # the serve process does not read: aborted, not a hang
    reader.close()
