"""``originlock edge`` and ``originlock api``: one role per node, for fleets on PostgreSQL.

- ``edge --store URL``: the data plane alone. It never migrates or writes configuration; it compiles
  snapshots from the store (told of changes by NOTIFY), keeps a last-known-good copy in its data dir and
  starts from it when the store is unreachable, and answers ``/healthz``, ``/healthz/snapshot`` and
  ``/metrics`` on ``--health``. It needs the fleet's master key (``ORIGINLOCK_MASTER_KEY`` or
  ``master.key`` in the data dir) to unseal keys.
- ``api --store URL``: the control plane alone: the v4 API, the periodic jobs (each run by one node of
  the fleet at a time, by lease), no edge listener.

``serve`` keeps running both in one process. Every role registers itself (``GET /client/v4/edge_nodes``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from originlock.cli.api_options import add_api_options, host_port
from originlock.cli.log_setup import configure_logging
from originlock.cli.ports import API_BACKLOG, PortInUse, bind_api_socket
from originlock.cli.waf_options import add_waf_options, edge_waf_from_args
from originlock.edge.config import add_edge_arguments, edge_config_from_args
from originlock.edge.loops import loop_factory
from originlock.edge.runtime import run_edge
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import SnapshotFactory, SnapshotSource
from originlock.edge.worker_stats import WorkerStatsBook
from originlock.server.bootstrap import MASTER_KEY_ENV
from originlock.server.disk_start import DiskFirstSource, StoreSource, load_for_start
from originlock.server.last_known_good import LastKnownGood
from originlock.server.monitor_options import add_monitor_arguments
from originlock.store.sealing import KeySealer, load_or_create_master_key

if TYPE_CHECKING:
    from originlock.server.health_http import HealthServer
    from originlock.store.db import Store

# The edge role imports the store layer (SQLAlchemy), the fleet tasks and the health listener's Prometheus
# client only where it needs them (_store_modules): a restart from the last-known-good copy serves before
# it imports any of them, ~0.6 CPU-s of imports that used to come before the first request (issue 15).

__all__ = ["add_parsers"]

log = logging.getLogger("originlock")


async def _serve_uvicorn(app: Any, where: tuple[str, int], sock: socket.socket | None = None) -> None:
    import uvicorn  # the api role's only: the edge role starts without the web stack (server/health_http.py)

    config = uvicorn.Config(app, host=where[0], port=where[1], log_level="warning", access_log=False, lifespan="off")
    from originlock.server.api_server import ApiServer  # imports uvicorn: the api role's only

    server = ApiServer(config)  # uvicorn's, ticking once a second when idle

    def _on_signal(_signum: int, _frame: Any) -> None:
        server.should_exit = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    await server.serve(sockets=[sock] if sock is not None else None)


def _where(address: tuple[str, int] | None) -> str | None:
    return f"{address[0]}:{address[1]}" if address else None


def _health_server(source: object, edge: EdgeServer, worker_stats: WorkerStatsBook) -> HealthServer:
    from prometheus_client import CollectorRegistry

    from originlock.server import metrics
    from originlock.server.health_http import HealthServer, edge_health_routes

    registry = CollectorRegistry(auto_describe=False)
    state = edge.state
    metrics.add_edge_collectors(
        registry,
        requests=lambda: worker_stats.request_counts(state.request_counts),
        pool=lambda: worker_stats.pool_statistics(state.pool.statistics()),
        processes=lambda: 1 + worker_stats.reporting(),
    )
    return HealthServer(edge_health_routes(registry, source))


def _serving_modules() -> None:
    """What the edge role needs only once it serves: the health listener (with the Prometheus client) and
    the fleet tasks. Imported in a worker thread, beside the event loop that already serves."""
    import prometheus_client  # noqa: F401

    import originlock.server.fleet_node
    import originlock.server.health_http
    import originlock.server.leadership
    import originlock.server.metrics  # noqa: F401


def _open_store(url: str, sealer: KeySealer) -> Store:
    """The edge's store handle, with the store layer's imports. An edge node never migrates nor writes
    configuration: creating the handle touches no database."""
    import originlock.server.store_snapshots  # noqa: F401  (the store's snapshot source: built next)
    from originlock.store.db import Store
    from originlock.store.deadline import SNAPSHOT_TIMEOUTS

    return Store(url, sealer, timeouts=SNAPSHOT_TIMEOUTS, migrate_schema=False)


def _open_store_serving(url: str, sealer: KeySealer) -> Store:
    """:func:`_open_store` and :func:`_serving_modules`, for a node that already serves its disk copy."""
    store = _open_store(url, sealer)
    _serving_modules()
    return store


def _store_source(store: Store, lkg: LastKnownGood) -> StoreSource:
    from originlock.server.store_snapshots import StoreSnapshotSource

    return StoreSnapshotSource(store, last_known_good=lkg)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _edge(args: argparse.Namespace) -> int:
    try:
        edge_config = edge_config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    sealer = KeySealer(load_or_create_master_key(data_dir / "master.key", os.environ.get(MASTER_KEY_ENV)))
    lkg = LastKnownGood(data_dir, sealer)
    # With --workers the workers build their own sources from the factory and start from the store; this
    # process's own keeps the last-known-good copy, and starts from it.
    saved = load_for_start(lkg)
    store: Store | None = None
    source: DiskFirstSource | StoreSource
    if saved is not None:
        # Served from the copy at once; the store is opened once the edge listens (server/disk_start.py).
        source = DiskFirstSource(saved, lkg, functools.partial(_open_store_serving, args.store, sealer), _store_source)
    else:
        store = _open_store(args.store, sealer)
        try:
            source = await asyncio.to_thread(_store_source, store, lkg)
        except Exception as exc:
            print(
                f"error: the store is unreachable ({type(exc).__name__}) and there is no last-known-good snapshot "
                f"in {lkg.path}: start this node once while the store answers",
                file=sys.stderr,
            )
            store.close()
            return 1
    snapshots: SnapshotSource | SnapshotFactory = source
    if edge_config.workers > 1:
        from originlock.server.store_snapshots import open_store_snapshots

        snapshots = functools.partial(open_store_snapshots, str(data_dir), args.store, False)
    edge_up: asyncio.Future[EdgeServer] = asyncio.get_running_loop().create_future()
    worker_stats = WorkerStatsBook()
    waf = edge_waf_from_args(args)
    edge_task = asyncio.create_task(
        run_edge(edge_config, snapshots, local=source, server_ready=edge_up, waf=waf, worker_stats=worker_stats)
    )
    waiters: set[asyncio.Future[Any]] = {edge_task, edge_up}
    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if edge_task in done and not edge_up.done():
        print(f"error: the edge could not start: {edge_task.exception()}", file=sys.stderr)
        if store is not None:
            store.close()
        return 1
    edge = edge_up.result()
    if isinstance(source, DiskFirstSource):
        # The edge serves the copy; its source opens the store meanwhile (the store layer's imports run in
        # that worker thread, not on the event loop).
        opened = source.connected_future()
        either: set[asyncio.Future[Any]] = {edge_task, opened}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not opened.done() or opened.exception() is not None:
            reason = opened.exception() if opened.done() else edge_task.exception()
            print(f"error: the store could not be opened: {reason}", file=sys.stderr)
            await _stop([edge_task])
            return 1
        store = opened.result()
    else:
        await asyncio.to_thread(_serving_modules)  # off the event loop, which serves by now
    from originlock.server.fleet_node import start_fleet_tasks, stop_tasks
    from originlock.server.leadership import node_id

    assert store is not None
    served = edge.source
    address = {
        "http": _where(edge.http_address),
        "https": _where(edge.https_address),
        "health": f"{args.health[0]}:{args.health[1]}",
    }
    health = _health_server(served, edge, worker_stats)
    try:
        await health.start(*args.health)
    except OSError as exc:
        print(f"error: cannot listen on --health {address['health']}: {exc.strerror or exc}", file=sys.stderr)
        await stop_tasks([edge_task])
        store.close()
        return 1
    print(f"originlock edge node: {address}; generation {source.generation}", flush=True)
    tasks = start_fleet_tasks(store, node_id(), "edge", address, served)
    try:
        await _until_signalled()
    finally:
        await health.close()
        await stop_tasks([*tasks, edge_task])
        store.close()
    print("originlock edge stopped", flush=True)
    return 0


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):  # already reported, or stopping
            await task


async def _api(args: argparse.Namespace) -> int:
    # The control plane's modules only here: the edge role's start-up pays for every import (the periodic
    # jobs and the origin monitor were ~0.15 s of it).
    from originlock.cli.jobs import start_periodic_jobs
    from originlock.server.alerts_notify import WebhookQueueNotifier
    from originlock.server.bootstrap import bootstrap
    from originlock.server.fleet_node import start_fleet_tasks, stop_tasks
    from originlock.server.leadership import node_id
    from originlock.server.monitor import start_origin_monitor, stop_origin_monitor
    from originlock.web import control_plane_app

    # Bound first, as serve does: a busy --api fails here naming the address, and the listener sheds at the
    # file-descriptor limit (edge/listeners.py).
    try:
        api_sock = bind_api_socket(args.api[0], args.api[1], backlog=API_BACKLOG)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    deployment = bootstrap(Path(args.data_dir), args.store, fips=args.fips)
    store = deployment.store
    node = node_id()
    jobs = start_periodic_jobs(store, node, args.alert_interval)
    monitor = start_origin_monitor(
        args.origin_monitor_interval,
        store,
        None,
        args.origin_https_port,
        notifier=WebhookQueueNotifier(store),
        node=node,
    )
    app = control_plane_app(store, max_body=args.api_max_body)
    tasks = start_fleet_tasks(store, node, "api", {"api": f"{args.api[0]}:{args.api[1]}"}, None)
    print(f"originlock control plane on http://{args.api[0]}:{args.api[1]}/client/v4 (store: {store.backend})")
    try:
        await _serve_uvicorn(app, args.api, api_sock)
    finally:
        await stop_origin_monitor(monitor)
        await stop_tasks(tasks)
        await stop_tasks(jobs)
        store.close()
    print("originlock api stopped", flush=True)
    return 0


def _run(main: Any, args: argparse.Namespace) -> int:
    configure_logging()
    # uvloop for both roles, as for serve and every --workers process (edge/loops.py).
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        result: int = runner.run(main(args))
    return result


def add_parsers(sub: Any) -> None:
    edge: argparse.ArgumentParser = sub.add_parser(
        "edge",
        help="run an edge node of a fleet (no API)",
        description="Run the edge alone, from a fleet's store.\n\n"
        "example:\n  originlock edge --store postgresql://edge@db/originlock --data-dir /var/lib/originlock",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    edge.add_argument("--store", required=True, help="the fleet's store URL (postgresql://...)")
    edge.add_argument("--data-dir", default="originlock-data", help="master key and last-known-good snapshot")
    edge.add_argument(
        "--health",
        type=host_port,
        default=("127.0.0.1", 8788),
        help="HOST:PORT for /healthz, /healthz/snapshot and /metrics (default 127.0.0.1:8788)",
    )
    add_edge_arguments(edge)
    add_waf_options(edge)
    edge.set_defaults(func=functools.partial(_run, _edge))

    api: argparse.ArgumentParser = sub.add_parser(
        "api",
        help="run the control plane of a fleet (no edge)",
        description="Run the Cloudflare-v4-compatible API and the periodic jobs, without an edge.\n\n"
        "example:\n  originlock api --store postgresql://api@db/originlock --api 0.0.0.0:8787",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    api.add_argument("--store", required=True, help="the fleet's store URL (postgresql://...)")
    api.add_argument("--data-dir", default="originlock-data", help="master key and admin token")
    api.add_argument("--api", type=host_port, default=("127.0.0.1", 8787), help="API HOST:PORT")
    api.add_argument("--fips", action="store_true", help="FIPS profile for every zone")
    api.add_argument("--alert-interval", type=float, default=60.0, metavar="SECONDS")
    api.add_argument("--origin-https-port", type=int, default=443, help="origin HTTPS port the exposure monitor probes")
    add_api_options(api)
    add_monitor_arguments(api)
    api.set_defaults(func=functools.partial(_run, _api))
