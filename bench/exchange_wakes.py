#!/usr/bin/env python3
"""Tasks, task steps and event-loop callbacks per request when every request dials a new origin connection.

The mechanism behind the new-origin shapes' p99 (docs/performance.md, issue 11, dial3 and wake): each time
the exchange's task is woken it waits in the loop's ready queue behind that iteration's other callbacks,
which in a busy loop include other dials' handshakes. This counts, per request, the tasks the edge makes,
the steps they take (each step after the first is a wake through the ready queue) and, on the stdlib loop,
every callback the loop runs (``Handle._run``: I/O, timers, wake-ups, the grouped writes). No valgrind:
the counts do not depend on the box's load.

The workload is origin_dial_edge.py's: the product's ``EdgeServer`` in a child process, a Full (strict)
zone with its client certificate, nginx as the mTLS origin with ``keepalive_timeout 0``, one keep-alive
TLS visitor sending one request after another. Two runs (``--requests low,high``); the difference divided
by the difference removes start-up and the warm-up requests.

    PYTHONPATH=TREE python bench/exchange_wakes.py [--loops uvloop,asyncio] [--origins resume,full]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from origin_dial_edge import SESSIONS, _requests
from valgrind_counts import free_port, interpreter, origin_block, start_ready

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import asyncio, collections.abc, json, sys
from pathlib import Path

sys.path.insert(0, sys.argv[4])
from edge_children import serve_until_stdin_closes, write_origin_files
from originlock.edge.config import EdgeConfig
from originlock.edge.loops import loop_factory
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.snapshot.model import SslMode
from originlock.testing.pki import TestPki, make_route, make_snapshot

directory, origin_port, edge_port, kind = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[5]
pki = TestPki()
write_origin_files(pki, directory)
route = make_route("a.example.test", ssl_mode=SslMode.STRICT, client_cert=pki.client("zone-a"))
source = MemorySnapshotSource(make_snapshot(pki, route))
config = EdgeConfig(http=None, https=("127.0.0.1", edge_port), origin_https_port=origin_port, loop=kind)
counts = {"tasks": 0, "steps": 0, "callbacks": 0}


class Counted(collections.abc.Coroutine):
    # A task's coroutine, counting the task's steps (the C task calls send, throw or __next__ once per step).
    def __init__(self, coro):
        self.coro = coro

    def send(self, value):
        counts["steps"] += 1
        return self.coro.send(value)

    def throw(self, *exc):
        counts["steps"] += 1
        return self.coro.throw(*exc)

    def close(self):
        return self.coro.close()

    def __await__(self):
        return self

    def __next__(self):
        return self.send(None)


def factory(loop, coro, **kw):
    counts["tasks"] += 1
    return asyncio.Task(Counted(coro), loop=loop, **kw)


if kind == "asyncio":
    from asyncio import events

    handle_run = events.Handle._run

    def counted_run(self):
        counts["callbacks"] += 1
        return handle_run(self)

    events.Handle._run = counted_run


async def main():
    server = EdgeServer(config, source)
    await server.start()
    asyncio.get_running_loop().set_task_factory(factory)  # after start-up: the housekeeping is main's
    await serve_until_stdin_closes(server.serve())

with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
    runner.run(main())
print(json.dumps(counts), flush=True)
"""


def _count(kind: str, origin: str, requests: int, tmp: Path) -> dict[str, int]:
    from originlock.testing.nginx import NginxProcess
    from originlock.testing.require import require_executable

    run_dir = tmp / f"{kind}-{origin}-{requests}"
    run_dir.mkdir()
    script = run_dir / "child.py"
    script.write_text(_CHILD)
    origin_port, edge_port = free_port(), free_port()
    argv = [interpreter(), str(script), str(run_dir), str(origin_port), str(edge_port), str(ROOT / "bench"), kind]
    proc = start_ready(argv, f"the {kind} edge")
    block = origin_block(origin_port, run_dir, run_dir / "pull-ca.pem", SESSIONS[origin] + "keepalive_timeout 0; ")
    nginx = NginxProcess(require_executable("nginx"), run_dir / "nginx", block, ports=[origin_port]).start()
    try:
        _requests(edge_port, 5)  # warm, as origin_dial_edge.py does
        _requests(edge_port, requests)
    finally:
        nginx.stop()
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise SystemExit(f"the {kind} edge failed:\n{err[-3000:]}")
    counts: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return counts


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", default="uvloop,asyncio")
    parser.add_argument("--origins", default="resume,full")
    parser.add_argument("--requests", default="20,120", help="the two request counts, low,high")
    args = parser.parse_args()
    low, high = (int(n) for n in args.requests.split(","))
    with tempfile.TemporaryDirectory() as name:
        for origin in args.origins.split(","):
            for kind in args.loops.split(","):
                a, b = (_count(kind, origin, n, Path(name)) for n in (low, high))
                per = {key: (b[key] - a[key]) / (high - low) for key in a}
                shown = ", ".join(f"{v:.2f} {k}" for k, v in per.items() if kind == "asyncio" or k != "callbacks")
                print(f"{origin:6} {kind:8} per request: {shown}", flush=True)


if __name__ == "__main__":
    main()
