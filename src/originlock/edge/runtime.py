"""Running the edge: ``run_edge`` for ``originlock serve``, and ``--workers`` processes.

With ``workers == 1`` the edge runs in the caller's event loop. With ``workers == N > 1`` the calling
process runs one edge itself and spawns ``N - 1`` worker processes (``multiprocessing`` *spawn*, so no
event-loop state is inherited through ``fork``); every process binds the listeners with
``SO_REUSEPORT`` and builds its own snapshot source by calling the factory. Cancelling ``run_edge``
stops the local edge gracefully and sends SIGTERM to the workers, which shut down gracefully too.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from multiprocessing.process import BaseProcess

from originlock.edge.config import EdgeConfig
from originlock.edge.loops import loop_factory
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import SnapshotFactory, SnapshotSource
from originlock.pipeline.hooks import WafHook

__all__ = ["run_edge", "run_edge_process"]

#: How long workers get to exit after SIGTERM before they are killed.
WORKER_STOP_SECONDS = 15.0


async def run_edge(
    config: EdgeConfig,
    snapshots: SnapshotSource | SnapshotFactory,
    *,
    ready: asyncio.Event | None = None,
    waf: WafHook | None = None,
    server_ready: asyncio.Future[EdgeServer] | None = None,
) -> None:
    """Serve visitors until cancelled, then shut down cleanly.

    Args:
        config: listeners, origin ports, timeouts, workers.
        snapshots: a :class:`SnapshotSource`, or a factory returning one. ``workers > 1`` requires a
            picklable factory (each worker process calls it).
        ready: set once the local edge is listening.
        waf: the WAF hook run for every request before the origin is contacted.
        server_ready: receives the local :class:`EdgeServer` (bound addresses) once listening.

    Raises:
        OSError: a listener cannot be bound.
        ValueError: ``workers > 1`` with a source instead of a factory.
    """
    if isinstance(snapshots, SnapshotSource):
        if config.workers > 1:
            raise ValueError("--workers > 1 needs a snapshot factory, not a snapshot source")
        source = snapshots
    else:
        source = snapshots()
    server = EdgeServer(config, source, waf=waf)
    await server.start()
    workers = _spawn_workers(config, snapshots, waf) if config.workers > 1 else []
    if ready is not None:
        ready.set()
    if server_ready is not None and not server_ready.done():
        server_ready.set_result(server)
    try:
        await server.serve()
    finally:
        await asyncio.get_running_loop().run_in_executor(None, _stop_workers, workers)


def _spawn_workers(config: EdgeConfig, factory: object, waf: WafHook | None) -> list[BaseProcess]:
    ctx = multiprocessing.get_context("spawn")
    procs: list[BaseProcess] = []
    for index in range(1, config.workers):
        proc = ctx.Process(target=run_edge_process, args=(config, factory, waf), name=f"originlock-edge-{index}")
        proc.daemon = True
        proc.start()
        procs.append(proc)
    return procs


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


def run_edge_process(config: EdgeConfig, factory: SnapshotFactory, waf: WafHook | None = None) -> None:
    """Entry point of a worker process: run one edge until SIGTERM/SIGINT."""
    loop = loop_factory(config.loop)()
    asyncio.set_event_loop(loop)
    task = loop.create_task(_worker_main(config, factory, waf))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(task)
    loop.close()


async def _worker_main(config: EdgeConfig, factory: SnapshotFactory, waf: WafHook | None) -> None:
    server = EdgeServer(config, factory(), waf=waf)  # config.workers > 1: listeners use SO_REUSEPORT
    await server.start()
    await server.serve()
