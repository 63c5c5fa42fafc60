"""`originlock serve`: the control plane (and the edge) on one command, embedded store by default."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from originlock.cli.api_options import add_api_options, host_port
from originlock.cli.jobs import start_periodic_jobs
from originlock.cli.log_setup import configure_logging
from originlock.cli.ports import API_BACKLOG, PortInUse, bind_api_socket, busy_addresses
from originlock.cli.serve_errors import data_dir_problem, store_problem
from originlock.cli.serve_outage import ApiUntilReady, OutageStart, bootstrap_when_reachable, outage_start
from originlock.cli.waf_options import add_waf_options, edge_waf_from_args
from originlock.dashboard import WafRecorder, attach_waf_recorder
from originlock.edge.build_info import head_splitter, hot_path_kind
from originlock.edge.config import add_edge_arguments, edge_config_from_args
from originlock.edge.loops import loop_factory, loop_kind
from originlock.edge.runtime import run_edge
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import SnapshotFactory, SnapshotSource
from originlock.edge.worker_stats import WorkerStatsBook
from originlock.proto.http2 import h2_codec
from originlock.server.alerts_notify import WebhookQueueNotifier
from originlock.server.api_server import ApiServer
from originlock.server.bootstrap import Deployment, bootstrap
from originlock.server.fleet_node import start_fleet_tasks, stop_tasks
from originlock.server.leadership import node_id
from originlock.server.metrics import add_edge_collectors
from originlock.server.monitor import add_monitor_arguments, start_origin_monitor, stop_origin_monitor
from originlock.server.snapshot_health import add_snapshot_health
from originlock.server.store_snapshots import local_snapshot_source, open_store_snapshots
from originlock.store.errors import StoreError
from originlock.web import control_plane_app

__all__ = ["add_parser"]

log = logging.getLogger("originlock")


def _banner(deployment: Deployment, api: tuple[str, int], edge: list[str]) -> str:
    base = f"http://{api[0]}:{api[1]}"
    token_line = (
        f"admin token (shown once, also in {deployment.admin_token_path}):\n    {deployment.new_admin_token}"
        if deployment.new_admin_token
        else f"admin token: in {deployment.admin_token_path} (or ORIGINLOCK_ADMIN_TOKEN)"
    )
    return "\n".join(
        [
            f"originlock control plane on {base}/client/v4",
            *edge,
            f"store: {deployment.store.backend}; data dir: {deployment.data_dir}",
            token_line,
            "CA certificates: " + "  ".join(f"{base}/ca/{name}.pem" for name in ("origin-pull", "edge", "origin")),
            f"dashboard: {base}/dashboard (sign in with an API token)",
            # Only on the first start: on a restart the operator is past this step.
            *(["next: originlock zones add example.test"] if deployment.first_start else []),
        ]
    )


def _edge_addresses(edge: EdgeServer) -> list[str]:
    lines = []
    if edge.http_address:
        lines.append(f"edge HTTP on http://{edge.http_address[0]}:{edge.http_address[1]}")
    if edge.https_address:
        lines.append(f"edge HTTPS on https://{edge.https_address[0]}:{edge.https_address[1]}")
    return lines


def _edge_lines(edge: EdgeServer, workers: int) -> list[str]:
    lines = _edge_addresses(edge)
    lines.append(f"edge request path: {hot_path_kind()}")
    lines.append(f"edge HTTP/1 heads: {head_splitter()}")
    lines.append(f"edge HTTP/2 codec: {h2_codec()}")
    processes = f"this one and {workers - 1} worker processes" if workers > 1 else "this one"
    lines.append(f"edge processes: {processes}; event loop: {loop_kind(asyncio.get_running_loop())}")
    return lines


async def _serve(args: argparse.Namespace) -> int:
    try:
        edge_config = edge_config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # The API's socket is bound first: a busy --api port fails here, naming the address, before anything
    # starts or the banner claims the control plane is up. uvicorn's own backlog is 2048.
    try:
        api_sock = bind_api_socket(args.api[0], args.api[1], backlog=API_BACKLOG)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    data_dir = Path(args.data_dir)
    outage: OutageStart | None = None
    try:
        deployment: Deployment | None = bootstrap(data_dir, args.store, fips=args.fips)
    except OSError as exc:
        api_sock.close()
        print(f"error: {data_dir_problem(data_dir, exc)}", file=sys.stderr)
        return 1
    except (ValueError, SQLAlchemyError, StoreError) as exc:
        # A PostgreSQL store that does not answer: the edge serves this node's copy meanwhile (cli/serve_outage.py).
        deployment, outage = None, outage_start(data_dir, args.store, exc)
        if outage is None:
            api_sock.close()
            print(f"error: {store_problem(args.store, exc)}", file=sys.stderr)
            return 1
        print(outage.banner(type(exc).__name__), flush=True)
    # This process's edge keeps the last-known-good copy and hears of this process's API writes by their hook,
    # after the response; with --workers, each worker process opens its own store connection (a picklable
    # factory) and follows the store alone.
    local: SnapshotSource
    if deployment is not None:
        local = local_snapshot_source(deployment)
    else:
        assert outage is not None
        local = outage.source
    snapshots: SnapshotSource | SnapshotFactory = local
    if edge_config.workers > 1:
        store_url = deployment.store_url if deployment is not None else args.store
        snapshots = functools.partial(open_store_snapshots, str(data_dir), store_url, args.fips)
    edge_up: asyncio.Future[EdgeServer] = asyncio.get_running_loop().create_future()
    # One rate limiter per edge process: workers each count on their own copy of the hook.
    # Wrapped to count WAF matches and keep the latest for the dashboard and /metrics (dashboard/waf_events.py).
    waf = WafRecorder(edge_waf_from_args(args), time.time)
    # What the --workers processes report (about once a second); /metrics adds it to this process's edge.
    worker_stats = WorkerStatsBook()
    edge_task = asyncio.create_task(
        run_edge(edge_config, snapshots, local=local, server_ready=edge_up, waf=waf, worker_stats=worker_stats)
    )
    waiters: set[asyncio.Future[Any]] = {edge_task, edge_up}
    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if edge_task in done and not edge_up.done():
        failure = edge_task.exception()
        listeners = [
            (flag, *addr) for flag, addr in (("--http", edge_config.http), ("--https", edge_config.https)) if addr
        ]
        problems = busy_addresses(listeners)
        where = "; ".join(problems) if problems else f"{failure}; check --http and --https"
        print(f"error: the edge could not start: {where}", file=sys.stderr)
        api_sock.close()
        if deployment is not None:
            deployment.store.close()
        return 1
    api = ApiUntilReady(edge_up.result().source)
    config = uvicorn.Config(
        api, host=args.api[0], port=args.api[1], log_level="warning", access_log=False, lifespan="off"
    )
    server = ApiServer(config)  # uvicorn's, ticking once a second when idle
    # uvicorn captures SIGINT/SIGTERM while serving and re-raises them afterwards; a handler of ours
    # turns that re-raise into a clean exit instead of a traceback.
    stop = {"signal": 0}

    def _on_signal(signum: int, _frame: Any) -> None:
        stop["signal"] = signum
        server.should_exit = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    serving: asyncio.Task[None] | None = None
    if deployment is None:
        serving = asyncio.create_task(server.serve(sockets=[api_sock]))  # 503s until the store answers
        deployment = await bootstrap_when_reachable(data_dir, args.store, args.fips, serving)
        if deployment is None:  # stopped before the store answered
            await stop_tasks([serving, edge_task])
            print("originlock stopped", flush=True)
            return 0
    node = node_id()
    jobs = start_periodic_jobs(deployment.store, node, args.alert_interval)
    app = control_plane_app(deployment.store, max_body=args.api_max_body)
    attach_waf_recorder(app, waf, worker_stats)
    edge_state = edge_up.result().state
    api_sock.on_shed = lambda count: edge_state.overload.count("accept", count)
    # The fleet: /healthz/snapshot and snapshot metrics, the lease keeper, this node's registration.
    add_snapshot_health(app, app.state.metrics, edge_up.result().source)
    address = {"api": f"{args.api[0]}:{args.api[1]}", "edge": _edge_addresses(edge_up.result())}
    fleet_tasks = start_fleet_tasks(deployment.store, node, "serve", address, edge_up.result().source)
    add_edge_collectors(
        app.state.metrics,
        requests=lambda: worker_stats.request_counts(edge_state.request_counts),
        pool=lambda: worker_stats.pool_statistics(edge_state.pool.statistics()),
        processes=lambda: 1 + worker_stats.reporting(),
        websockets=lambda: worker_stats.websocket_counts(
            (edge_state.websockets.active, edge_state.websockets.upgrades)
        ),
    )
    api.ready(app)
    print(_banner(deployment, args.api, _edge_lines(edge_up.result(), edge_config.workers)), flush=True)
    monitor_task = start_origin_monitor(
        args.origin_monitor_interval,
        deployment.store,
        # This process's edge source, also with --workers: given the factory, the monitor compiled a whole
        # snapshot of its own at every 30-s tick (a second of CPU at 100k hostnames, on an idle node).
        edge_up.result().source,
        edge_config.origin_https_port,
        notifier=WebhookQueueNotifier(deployment.store),
        node=node,
    )
    try:
        await (serving if serving is not None else server.serve(sockets=[api_sock]))
    finally:
        await stop_origin_monitor(monitor_task)
        await stop_tasks(fleet_tasks)
        await stop_tasks([edge_task, *jobs])
        deployment.store.close()
    if not server.started and not stop["signal"]:
        print(f"error: could not listen on {args.api[0]}:{args.api[1]} for the API; is something else there?")
        return 1
    print("originlock stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    configure_logging()
    # The edge shares this loop with the control plane: uvloop, like every --workers process.
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(_serve(args))


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="run the control plane and the edge",
        description=(
            "Run originlock: the Cloudflare-v4-compatible API and the edge.\n\n"
            "example:\n  originlock serve --data-dir ./originlock-data"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-dir", default="originlock-data", help="state directory (default ./originlock-data)")
    p.add_argument(
        "--api", type=host_port, default=("127.0.0.1", 8787), help="API listen HOST:PORT (default 127.0.0.1:8787)"
    )
    p.add_argument(
        "--store", default=None, help="store URL (default: SQLite in the data dir; postgresql://... for a fleet)"
    )
    p.add_argument(
        "--fips",
        action="store_true",
        help="FIPS profile for every zone: FIPS-approved uploads only, no shared certificate, FIPS suites to origins",
    )
    p.add_argument(
        "--alert-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often certificate expiry is checked for notifications (default 60)",
    )
    add_api_options(p)
    add_monitor_arguments(p)
    add_edge_arguments(p)
    add_waf_options(p)
    p.set_defaults(func=run)
