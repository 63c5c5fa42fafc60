#!/usr/bin/env python3
"""In-process cost of the edge's whole HTTP/2 request path, and its instruction count under valgrind.

``bench/edge_inprocess.py``'s harness (fake transports, ``call_soon`` run by hand, the product's snapshot
from the v4 API, the access log on, the WAF hook in the dashboard's recorder) around one HTTP/2 visitor
connection (``edge/http2.py`` on the default codec: the compiled shim where it is built) and ten pooled
origin connections. Each iteration is what ``h2load -c 10 -m 10`` sends one connection: one read with ten
GETs (HEADERS with END_STREAM, h2load's six fields, HPACK-indexed as after its first request); the ten
heads go to the origins, each origin answers as the benchmark's nginx origin does (a 200 whose body is the
client's DN), and the responses are flushed. That is the callback path of ``edge/exchange.py`` for every
stream (no task, no future), the path ``bench/h2_vs_nginx.py`` measures end to end minus TLS, uvloop and
the kernel.

    python bench/h2_inprocess.py [--src DIR ...]                  # CPU µs per request, alternating trees
    python bench/h2_inprocess.py --instructions [--src DIR ...]   # valgrind: instructions per request
    python bench/h2_inprocess.py --callgrind OUT [--src DIR]      # a callgrind profile of the steady loop

``--instructions`` runs the loop under ``valgrind --tool=cachegrind`` with two iteration counts and divides
the difference by the difference in requests (start-up cancels out): repeatable on a busy box, where CPU
times are not. DIR: a ``site-packages``-like tree holding a (compiled) ``originlock``; default: what Python
imports. Needs valgrind for the last two.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

from edge_inprocess import _Loop, _Transport, product_snapshot  # noqa: E402

HOST = b"a.bench.test"
STREAMS = 10
#: What the benchmark's nginx origin answers (``return 200 "ok $ssl_client_s_dn\n"``).
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\nok CN=zone-a\n"
)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


def client_blocks() -> tuple[bytes, bytes]:
    """h2load's request header block: first as sent on a new connection, then as every later one (its
    fields all in the HPACK dynamic table by then)."""
    import hpack

    fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", HOST), (b":path", b"/")]
    fields += [(b"user-agent", b"h2load nghttp2/1.52.0"), (b"accept", b"*/*")]
    encoder = hpack.Encoder()
    first, second, third = (encoder.encode(fields) for _ in range(3))
    assert second == third, "the steady-state block is not stable"
    return first, second


class H2Client:
    """The bytes one h2load connection sends: its preface and settings, then reads of ten GETs."""

    def __init__(self) -> None:
        self.first, self.steady = client_blocks()
        self.next_id = 1

    def preface(self) -> bytes:
        settings = (3).to_bytes(2, "big") + (100).to_bytes(4, "big")  # MAX_CONCURRENT_STREAMS
        settings += (4).to_bytes(2, "big") + ((1 << 30) - 1).to_bytes(4, "big")  # INITIAL_WINDOW_SIZE (-w 30)
        settings += (2).to_bytes(2, "big") + (0).to_bytes(4, "big")  # ENABLE_PUSH
        update = _frame(8, 0, 0, ((1 << 30) - 1 - 65535).to_bytes(4, "big"))  # connection window (-W 30)
        return PREFACE + _frame(4, 0, 0, settings) + update

    def read(self, streams: int = STREAMS) -> bytes:
        frames = []
        for _ in range(streams):
            block = self.first if self.next_id == 1 else self.steady
            frames.append(_frame(1, 0x05, self.next_id, block))  # END_STREAM | END_HEADERS
            self.next_id += 2
        return b"".join(frames)


def measure(iterations: int, repeats: int) -> list[float]:
    """CPU µs per request of ``repeats`` runs of ``iterations`` reads (ten requests each)."""
    from originlock.dashboard import WafRecorder
    from originlock.edge.config import EdgeConfig
    from originlock.edge.http2 import Http2Connection
    from originlock.edge.snapshots import MemorySnapshotSource
    from originlock.edge.state import EdgeState
    from originlock.origin.connection import OriginConnection
    from originlock.pipeline import PipelineSettings, RequestContext, run_until_origin
    from originlock.pipeline.builtin.waf import EdgeWaf
    from originlock.proto.http1 import RequestParser
    from originlock.proto.http2 import H2Limits

    tmp = Path(tempfile.mkdtemp(prefix="h2-inprocess-"))
    snapshot = product_snapshot(tmp)
    config = EdgeConfig(origin_https_port=9443, access_log=str(tmp / "access.log"))
    waf: Any = WafRecorder(EdgeWaf(time.monotonic, time.time), time.time)  # as cli/serve.py wires it
    loop = _Loop()
    state = EdgeState(loop, config, MemorySnapshotSource(snapshot), waf=waf)  # type: ignore[arg-type]
    total = (iterations // 10 + repeats * iterations) * STREAMS
    visitor = Http2Connection(state, "https", H2Limits(max_requests=total + 1))
    visitor_transport = _Transport({"peername": ("127.0.0.1", 40000)})
    visitor.connection_made(visitor_transport)  # type: ignore[arg-type]
    client = H2Client()
    visitor.data_received(client.preface())
    loop.run_soon()
    written_at_start = visitor_transport.writes

    request = RequestParser().feed(b"GET / HTTP/1.1\r\nHost: a.bench.test\r\n\r\n")[0]
    ctx = RequestContext(ray_id="-", snapshot=snapshot, scheme="https", client_ip="", client_port=0, started=0.0)
    forward = run_until_origin(request, ctx, PipelineSettings(origin_https_port=9443))  # type: ignore[arg-type]
    key = forward.peer.pool_key()  # type: ignore[union-attr]
    origins: list[tuple[OriginConnection, _Transport]] = []
    for _ in range(STREAMS):
        origin = OriginConnection(loop)  # type: ignore[arg-type]
        transport = _Transport({})
        origin.connection_made(transport)  # type: ignore[arg-type]
        origin.key = key
        state.pool._state.opened(key)  # as if dialled
        origins.append((origin, transport))
    for origin, _ in origins:
        state.pool.release(origin, True)
    reads = [client.read() for _ in range(iterations // 10 + repeats * iterations)]

    def one(data: bytes) -> None:
        visitor.data_received(data)
        loop.run_soon()  # the ten heads go to the origins
        for origin, _ in origins:
            origin.data_received(RESPONSE)
        loop.run_soon()  # the responses are flushed to the visitor

    at = 0
    for _ in range(iterations // 10):
        one(reads[at])
        at += 1
    results = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(iterations):
            one(reads[at])
            at += 1
        results.append((time.process_time() - start) / iterations / STREAMS * 1e6)
    # Every request went to an origin and every read's responses went back in one write.
    reads_done = iterations // 10 + repeats * iterations
    to_origins = sum(t.writes for _, t in origins)
    if to_origins != reads_done * STREAMS or visitor_transport.writes - written_at_start != reads_done:
        raise SystemExit(
            f"{reads_done * STREAMS} requests, but {to_origins} writes to the origins and"
            f" {visitor_transport.writes - written_at_start} to the visitor: not the path this measures"
        )
    if visitor.streams:
        raise SystemExit(f"{len(visitor.streams)} streams left open")
    state.book.access_log.close()
    lines = (tmp / "access.log").read_bytes().count(b"\n")
    if lines != reads_done * STREAMS:
        raise SystemExit(f"{reads_done * STREAMS} requests but {lines} access-log lines")
    shutil.rmtree(tmp, ignore_errors=True)
    return sorted(results)


#: What the loop calls into the compiled edge through (mypyc's wrappers): a profile collected inside these
#: only is the request path without start-up, imports or the harness.
_LOOP_ENTRIES = (
    "CPyPy_http2___Http2Connection___data_received",
    "CPyPy_connection___OriginConnection___data_received",
    "CPyPy_write_batch___WriteBatch____run",
)

_CHILD = """
import sys
tree, iterations = sys.argv[1], int(sys.argv[2])
if tree:
    sys.path.insert(0, tree)
sys.path.insert(0, {bench!r})
import originlock
if tree and not originlock.__file__.startswith(tree):
    raise SystemExit(f"{{tree}} is not what was imported ({{originlock.__file__}})")
import h2_inprocess
h2_inprocess.measure(iterations, 1)
"""


def _valgrind(tree: str, iterations: int, tool: list[str], tmp: str) -> str:
    child = Path(tmp) / "child.py"
    child.write_text(_CHILD.format(bench=str(_HERE)))
    # The interpreter itself (pyenv's shims are shell scripts), but a venv's own path: resolving its symlink
    # would leave the venv.
    python = sys.executable if sys.prefix != sys.base_prefix else os.path.realpath(sys.executable)
    run = subprocess.run(
        ["valgrind", *tool, python, str(child), tree, str(iterations)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if run.returncode != 0:
        raise SystemExit(f"the loop under valgrind failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return run.stderr


def instructions(tree: str, iterations: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = _valgrind(
            tree, iterations, ["--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={tmp}/o"], tmp
        )
    match = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", default=[], help="a tree holding originlock (default: installed)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=3000, help="reads of ten requests per run")
    parser.add_argument("--instructions", action="store_true", help="count instructions per request (valgrind)")
    parser.add_argument("--callgrind", metavar="OUT", help="write a callgrind profile of the loop to OUT")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    trees = args.src or [""]
    if args.callgrind:
        with tempfile.TemporaryDirectory() as tmp:
            # Collection off during start-up and warm-up would need a client request; the longer run dominates.
            tool = ["--tool=callgrind", f"--callgrind-out-file={args.callgrind}", "--collect-atstart=no"]
            tool += [f"--toggle-collect={entry}" for entry in _LOOP_ENTRIES]
            _valgrind(trees[0], args.iterations, tool, tmp)
        print(f"callgrind profile in {args.callgrind} ({args.iterations * 1.1 * STREAMS:.0f} requests)")
        return
    if args.instructions:
        short, long = 200, 200 + args.iterations
        for tree in trees:
            counts = [instructions(tree, n) for n in (long, short)]
            # measure() runs a tenth of the iterations as warm-up first: 1.1 reads per iteration.
            per_request = (counts[0] - counts[1]) / (1.1 * (long - short) * STREAMS)
            print(f"{tree or 'installed'}: {per_request:,.0f} instructions per request")
        return
    if args.child is not None:
        if args.child:
            sys.path.insert(0, args.child)
        results = measure(args.iterations, 5)
        import originlock

        print(f"{results[0]:.2f} {results[2]:.2f} {Path(originlock.__file__).parent}")
        return
    for round_ in range(args.rounds):
        for tree in trees:
            out = subprocess.run(
                [sys.executable, __file__, "--child", tree, "--iterations", str(args.iterations)],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout.split()
            print(f"round {round_ + 1} {tree or out[2]}: min {out[0]} median {out[1]} µs/request")


if __name__ == "__main__":
    main()
