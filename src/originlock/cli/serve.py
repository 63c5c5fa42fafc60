"""`originlock serve`: the control plane (and the edge) on one command, embedded store by default."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

import uvicorn

from originlock.api.app import create_app
from originlock.server.bootstrap import Deployment, bootstrap

__all__ = ["add_parser"]

log = logging.getLogger("originlock")


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _banner(deployment: Deployment, api: tuple[str, int]) -> str:
    base = f"http://{api[0]}:{api[1]}"
    token_line = (
        f"admin token (shown once, also in {deployment.admin_token_path}):\n    {deployment.new_admin_token}"
        if deployment.new_admin_token
        else f"admin token: in {deployment.admin_token_path} (or ORIGINLOCK_ADMIN_TOKEN)"
    )
    return "\n".join(
        [
            f"originlock control plane on {base}/client/v4",
            f"store: {deployment.store.backend}; data dir: {deployment.data_dir}",
            token_line,
            "CA certificates: " + "  ".join(f"{base}/ca/{name}.pem" for name in ("origin-pull", "edge", "origin")),
            "next: originlock zones add example.test",
        ]
    )


async def _serve(args: argparse.Namespace) -> int:
    deployment = bootstrap(Path(args.data_dir), args.store)
    app = create_app(deployment.store)
    config = uvicorn.Config(
        app, host=args.api[0], port=args.api[1], log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    print(_banner(deployment, args.api), flush=True)
    # uvicorn captures SIGINT/SIGTERM while serving and re-raises them afterwards; a handler of ours
    # turns that re-raise into a clean exit instead of a traceback.
    stop = {"signal": 0}

    def _on_signal(signum: int, _frame: Any) -> None:
        stop["signal"] = signum
        server.should_exit = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        await server.serve()
    finally:
        deployment.store.close()
    if not server.started and not stop["signal"]:
        print(f"error: could not listen on {args.api[0]}:{args.api[1]} for the API; is something else there?")
        return 1
    print("originlock stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return asyncio.run(_serve(args))


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
        "--api", type=_host_port, default=("127.0.0.1", 8787), help="API listen HOST:PORT (default 127.0.0.1:8787)"
    )
    p.add_argument(
        "--store", default=None, help="store URL (default: SQLite in the data dir; postgresql://... for a fleet)"
    )
    p.set_defaults(func=run)
