"""Running the edge: ``run_edge`` for ``originlock serve``, and ``--workers`` processes.

With ``workers == 1`` the edge runs in the caller's event loop. With ``workers == N > 1`` the calling
process runs one edge itself and spawns ``N - 1`` worker processes (``multiprocessing`` *spawn*, so no
event-loop state is inherited through ``fork``); every process binds the listeners with
``SO_REUSEPORT`` and builds its own snapshot source by calling the factory. Cancelling ``run_edge``
stops the local edge gracefully and sends SIGTERM to the workers, which shut down gracefully too.

Each worker reports its request counts and pool statistics to the calling process over a pipe of its own
(:mod:`~originlock.edge.worker_channel`): about once a second, and once more after its graceful shutdown.
They land in a :class:`~originlock.edge.worker_stats.WorkerStatsBook`, which ``/metrics`` adds to the local
edge's counts. A worker whose pipe closes (the calling process is gone) shuts down as if sent SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import sys
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Final

from originlock.edge.build_info import hot_path_kind
from originlock.edge.config import EdgeConfig
from originlock.edge.loops import loop_factory, loop_kind
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import SnapshotFactory, SnapshotSource
from originlock.edge.state import EdgeState
from originlock.edge.worker_channel import REPORT_SECONDS, WorkerReporter, WorkerReports
from originlock.edge.worker_stats import WorkerReport, WorkerStatsBook
from originlock.pipeline.hooks import WafHook
from originlock.pipeline.waf_activity import RecordingHook, WafEvent, WafKey

__all__ = ["run_edge", "run_edge_process"]

#: How long workers get to exit after SIGTERM before they are killed.
WORKER_STOP_SECONDS: Final = 15.0


async def run_edge(
    config: EdgeConfig,
    snapshots: SnapshotSource | SnapshotFactory,
    *,
    local: SnapshotSource | None = None,
    ready: asyncio.Event | None = None,
    waf: WafHook | None = None,
    server_ready: asyncio.Future[EdgeServer] | None = None,
    worker_stats: WorkerStatsBook | None = None,
    report_interval: float = REPORT_SECONDS,
) -> None:
    """Serve visitors until cancelled, then shut down cleanly.

    Args:
        config: listeners, origin ports, timeouts, workers.
        snapshots: a :class:`SnapshotSource`, or a factory returning one. ``workers > 1`` requires a
            picklable factory (each worker process calls it).
        local: with a factory, this process's own source instead of one from the factory (a node's main
            process keeps the last-known-good copy and hears of its own API's writes; workers need neither).
        ready: set once the local edge is listening.
        waf: the WAF hook run for every request before the origin is contacted.
        server_ready: receives the local :class:`EdgeServer` (bound addresses) once listening.
        worker_stats: receives the worker processes' reports (``/metrics`` reads it); without it they are
            read and dropped.
        report_interval: seconds between a worker's reports (each also reports when it starts and stops).

    Raises:
        OSError: a listener cannot be bound.
        ValueError: ``workers > 1`` with a source instead of a factory.
    """
    if isinstance(snapshots, SnapshotSource):
        if config.workers > 1:
            raise ValueError("--workers > 1 needs a snapshot factory, not a snapshot source")
        source = snapshots
    else:
        source = local if local is not None else snapshots()
    server = EdgeServer(config, source, waf=waf)
    await server.start()
    reports = WorkerReports(worker_stats if worker_stats is not None else WorkerStatsBook())
    workers: list[BaseProcess] = []
    serving = False
    try:
        if config.workers > 1:
            await _spawn_workers(config, (snapshots, waf, report_interval), reports, workers)
        if ready is not None:
            ready.set()
        if server_ready is not None and not server_ready.done():
            server_ready.set_result(server)
        serving = True
        await server.serve()
    finally:
        if not serving:  # serve() closes the listeners itself
            await server.aclose()
        await asyncio.get_running_loop().run_in_executor(None, _stop_workers, workers)
        await reports.aclose()


async def _spawn_workers(
    config: EdgeConfig, args: tuple[object, ...], reports: WorkerReports, procs: list[BaseProcess]
) -> None:
    """Start the workers with ``(config, *args, pipe)``, appending each to ``procs`` as soon as it runs (the
    caller stops them all)."""
    ctx = multiprocessing.get_context("spawn")
    for index in range(1, config.workers):
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=run_edge_process, args=(config, *args, writer), name=f"originlock-edge-{index}")
        proc.daemon = True
        try:
            proc.start()
        except BaseException:
            reader.close()
            raise
        finally:
            writer.close()  # the worker has its own copy; ours would hide its exit (no end of file)
        procs.append(proc)
        await reports.attach(reader)


def _stop_workers(procs: list[BaseProcess]) -> None:
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    for proc in procs:
        proc.join(WORKER_STOP_SECONDS)
        if proc.is_alive():
            proc.kill()
            proc.join()


def run_edge_process(
    config: EdgeConfig,
    factory: SnapshotFactory,
    waf: WafHook | None = None,
    report_interval: float = REPORT_SECONDS,
    reports: Connection | None = None,
) -> None:
    """Entry point of a worker process: run one edge until SIGTERM/SIGINT (or until ``reports``, the
    sending end of its pipe to the spawning process, closes under it)."""
    loop = loop_factory(config.loop)()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    # Setting an event is idempotent: a second signal (Ctrl-C reaches the whole process group, then the
    # serve process sends SIGTERM) must not interrupt the graceful shutdown the first one started.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(_worker_main(config, factory, waf, reports, report_interval, stop))
    finally:
        loop.close()


def _report(state: EdgeState) -> WorkerReport:
    sockets = state.websockets
    waf: dict[WafKey, int] = {}
    events: tuple[WafEvent, ...] = ()
    if isinstance(state.waf, RecordingHook):  # serve's hook counts WAF matches for the dashboard and /metrics
        waf, events = state.waf.activity.counts(), tuple(state.waf.activity.recent())
    websockets = (sockets.active, sockets.upgrades)
    return WorkerReport.of(state.request_counts, state.pool.statistics(), websockets, waf, events)


async def _worker_main(
    config: EdgeConfig,
    factory: SnapshotFactory,
    waf: WafHook | None,
    reports: Connection | None,
    interval: float,
    stop: asyncio.Event,
) -> None:
    server = EdgeServer(config, factory(), waf=waf)  # config.workers > 1: listeners use SO_REUSEPORT
    await server.start()
    # Spawned processes have no logging configured: one plain line on the inherited stderr, so that
    # operators (and tests) see what each worker runs.
    loop_name = loop_kind(asyncio.get_running_loop())
    name = multiprocessing.current_process().name
    print(f"{name} (pid {os.getpid()}): event loop {loop_name}, request path {hot_path_kind()}", file=sys.stderr)
    reporter = await WorkerReporter.open(reports, stop.set) if reports is not None else None
    loop = asyncio.get_running_loop()
    serving = loop.create_task(server.serve())
    reporting = None
    if reporter is not None:
        reporting = loop.create_task(reporter.run(lambda: _report(server.state), interval, server.idle))
    stopping = loop.create_task(stop.wait())
    await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    serving.cancel()  # a graceful drain, then the listeners and the pool are closed; reports go on meanwhile
    outcome = (await asyncio.gather(serving, stopping, return_exceptions=True))[0]
    if reporting is not None:
        reporting.cancel()
        await asyncio.gather(reporting, return_exceptions=True)
    if reporter is not None:
        await reporter.aclose(_report(server.state))  # includes the requests finished while draining
    if isinstance(outcome, Exception):
        raise outcome
