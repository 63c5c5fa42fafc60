"""The pipe from each ``--workers`` process to the serve process: reports out of the worker, into the book.

One one-way ``multiprocessing`` pipe per worker, one JSON line per report (:mod:`~originlock.edge.worker_stats`).
Both ends sit on their process's event loop as non-blocking pipe transports, so neither side can block the
other:

- the worker (:class:`WorkerReporter`) writes a report about once a second when it differs from the last one
  written, and skips one while the previous report is still unsent (a stuck serve process costs freshness,
  never the worker's requests, and at most one report is buffered); while the worker's edge is parked
  (``edge/idle.py``: nothing to keep, so nothing to count) it does not wake to report, and the serve process
  keeps the last report, which is still true; after its graceful shutdown it writes a final report and
  waits, briefly, for it to leave;
- the serve process (:class:`WorkerReports`) keeps the last complete line it read from each pipe, and retires
  the worker's slot at end of file, which the kernel delivers when the worker exits however it exits.

The worker also watches its end: the pipe closes under it only when the serve process is gone (the serve
process keeps its ends open until its workers have exited), and the worker then shuts down gracefully instead
of serving on as an orphan.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import IO, Final

from originlock.edge.idle import IdleGate
from originlock.edge.worker_stats import WorkerReport, WorkerStatsBook

__all__ = ["REPORT_SECONDS", "WorkerReporter", "WorkerReports"]

log = logging.getLogger("originlock.edge")

#: How often a worker reports: the edge's own housekeeping tick (``edge/server.py`` ``TICK_SECONDS``), and
#: shorter than any sensible scrape interval (Prometheus' default is 15 s), so a scrape lags by about a second.
REPORT_SECONDS: Final = 1.0
#: How long a worker waits at exit for its final report to be read, and the serve process for end of file
#: from workers that have exited.
FLUSH_SECONDS: Final = 5.0


def _pipe_file(conn: Connection, mode: str) -> IO[bytes]:
    """A file object owning a duplicate of ``conn``'s descriptor (``conn`` is closed), for a pipe transport."""
    fd = os.dup(conn.fileno())
    conn.close()
    return os.fdopen(fd, mode, buffering=0)


class _ReportReader(asyncio.Protocol):
    def __init__(self, book: WorkerStatsBook, slot: int, closed: asyncio.Future[None]) -> None:
        self._book = book
        self._slot = slot
        self._closed = closed
        self._partial = b""

    def data_received(self, data: bytes) -> None:
        head, newline, self._partial = (self._partial + data).rpartition(b"\n")
        if not newline:
            return
        latest = head.rpartition(b"\n")[2]  # reports are cumulative: only the newest complete one matters
        try:
            report = WorkerReport.decode(latest)
        except ValueError as exc:
            log.warning("edge worker sent a report that could not be read: %s", exc)
            return
        self._book.update(self._slot, report)

    def connection_lost(self, exc: Exception | None) -> None:
        self._book.retire(self._slot)
        if not self._closed.done():
            self._closed.set_result(None)


class WorkerReports:
    """The serve process's end of every worker's pipe. Use :meth:`attach` per worker, :meth:`aclose` once
    the workers have exited."""

    def __init__(self, book: WorkerStatsBook) -> None:
        self.book = book
        self._readers: list[tuple[asyncio.ReadTransport, asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        return f"WorkerReports(pipes={len(self._readers)}, book={self.book!r})"

    async def attach(self, reader: Connection) -> None:
        """Read ``reader`` (the receiving end of a worker's pipe; it is closed, its descriptor taken over)."""
        loop = asyncio.get_running_loop()
        slot = self.book.open_slot()
        closed: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.connect_read_pipe(
            lambda: _ReportReader(self.book, slot, closed), _pipe_file(reader, "rb")
        )
        self._readers.append((transport, closed))

    async def aclose(self, timeout: float = FLUSH_SECONDS) -> None:
        """Read what exited workers left in their pipes (up to end of file, for ``timeout`` at most), then
        close every pipe. Call after the workers have been joined."""
        pending = [closed for _, closed in self._readers if not closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for transport, _ in self._readers:
            transport.close()  # retires the slot (connection_lost) if end of file was not seen
        self._readers.clear()


class _ReportWriter(asyncio.BaseProtocol):
    def __init__(self, lost: asyncio.Future[None]) -> None:
        self._lost = lost

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)


class WorkerReporter:
    """A worker's end of its pipe. :meth:`open` it on the worker's loop, :meth:`send` reports, :meth:`aclose`
    with the final one."""

    def __init__(self, transport: asyncio.WriteTransport, lost: asyncio.Future[None]) -> None:
        self._transport = transport
        self._lost = lost
        self._closing = False

    def __repr__(self) -> str:
        state = "closing" if self._closing else "lost" if self._lost.done() else "open"
        return f"WorkerReporter({state})"

    @classmethod
    async def open(cls, writer: Connection, on_serve_gone: Callable[[], None]) -> WorkerReporter:
        """Take over ``writer`` (the sending end of the pipe; it is closed, its descriptor taken over).

        Args:
            writer: the sending end, as passed to the worker process.
            on_serve_gone: called once if the pipe closes under us, i.e. the serve process has exited.
        """
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.connect_write_pipe(lambda: _ReportWriter(lost), _pipe_file(writer, "wb"))
        reporter = cls(transport, lost)

        def _pipe_lost(_: asyncio.Future[None]) -> None:
            if not reporter._closing:  # not our own close: the serve process is gone
                on_serve_gone()

        lost.add_done_callback(_pipe_lost)
        return reporter

    def send(self, report: WorkerReport) -> bool:
        """Queue ``report`` unless the previous one is still unsent or the pipe is gone. Returns whether it
        was queued; a skipped report is harmless, the next one is cumulative too."""
        if self._closing or self._lost.done() or self._transport.get_write_buffer_size():
            return False
        self._transport.write(report.encode())
        return True

    async def run(
        self, current: Callable[[], WorkerReport], interval: float = REPORT_SECONDS, idle: IdleGate | None = None
    ) -> None:
        """Send ``current()`` now and then every ``interval`` seconds when it changed, until cancelled; while
        ``idle`` is parked, not at all (a report is taken after the park began: the last one sent is final
        for the quiet spell)."""
        last: WorkerReport | None = None
        while True:
            report = current()
            if report != last and self.send(report):
                last = report
            if idle is not None and idle.parked and report == last:  # else: try the unsent one again
                await idle.wait_awake()
            else:
                await asyncio.sleep(interval)

    async def aclose(self, final: WorkerReport, timeout: float = FLUSH_SECONDS) -> None:
        """Send ``final`` (after anything still queued), close the pipe and wait up to ``timeout`` for it to
        be written; a serve process that does not read in time gets the pipe aborted instead."""
        if self._closing:
            return
        self._closing = True
        if not self._lost.done():
            self._transport.write(final.encode())
            self._transport.close()
            await asyncio.wait([self._lost], timeout=timeout)
        if not self._lost.done():
            self._transport.abort()
