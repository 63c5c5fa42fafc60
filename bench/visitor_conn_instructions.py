#!/usr/bin/env python3
"""Instructions and system calls per new visitor TLS connection, counted in the edge process: repeatable.

A profiling aid for issue 11's "new visitor connection per request" shape. The edge (``EdgeServer`` on
uvloop, in one child process) proxies to a real nginx origin that requires the client certificate, over
pooled connections; this script, outside the edge, opens N TLS 1.3 connections one after the other, each
resuming the previous one's session (as wrk and browsers do) and sending one ``Connection: close``
request. The child runs under ``valgrind --tool=cachegrind`` (or ``strace -f -c``) twice, with two N; the
difference divided by the difference in N removes start-up (imports, snapshot, key generation).

    python bench/visitor_conn_instructions.py [--connections 30,130] [--syscalls] [--nginx-syscalls]

``--nginx-syscalls``: nginx as the edge doing the same job (TLS 1.3 listener with a session cache,
``proxy_pass`` over pooled mTLS connections to the same origin), its worker's system calls counted by
attaching ``strace -c`` for the N connections only.

``--cpu``: CPU per request from /proc of ``EdgeServer`` alone (this child: no API, no store polling, no
access log) and of nginx as the edge, under ``wrk -c20`` with ``Connection: close`` (product_vs_nginx.py's
new-visitor shape), medians of 3 runs of 4 s in the same run: how much of that shape's ratio is the edge itself
and how much the rest of ``originlock serve``'s process.

The measured ``originlock`` is the one this interpreter imports, or ``--python``'s (a venv's python).
Needs valgrind and nginx (and strace for ``--syscalls``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from valgrind_counts import (
    cachegrind_command,
    cachegrind_events,
    callgrind_by_object,
    callgrind_command,
    describe_syscalls,
    free_port,
    interpreter,
    nginx_edge_block,
    origin_block,
    per_unit,
    start_ready,
    strace_command,
    strace_counts,
)

if TYPE_CHECKING:
    from originlock.testing.nginx import NginxProcess

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import asyncio, sys
from pathlib import Path

sys.path.insert(0, sys.argv[4])
from edge_children import serve_until_stdin_closes, write_origin_files
from originlock.edge.config import EdgeConfig
from originlock.edge.loops import loop_factory
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.testing.pki import TestPki, make_route, make_snapshot

directory, origin_port, edge_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pki = TestPki()
write_origin_files(pki, directory)
source = MemorySnapshotSource(make_snapshot(pki, make_route("a.example.test", client_cert=pki.client("zone-a"))))
serve_like = len(sys.argv) > 5 and sys.argv[5] == "serve-like"
config = EdgeConfig(
    http=None,
    https=("127.0.0.1", edge_port),
    origin_https_port=origin_port,
    loop="uvloop",
    access_log=str(directory / "access.log") if serve_like else None,
)
waf = None
if serve_like:  # what `originlock serve` adds to the edge: the WAF hook wrapped by the dashboard's recorder
    import time
    from originlock.dashboard.waf_recorder import WafRecorder
    from originlock.pipeline.builtin.waf import EdgeWaf

    waf = WafRecorder(EdgeWaf(time.monotonic, time.time), time.time)


async def main():
    server = EdgeServer(config, source, waf=waf)
    await server.start()
    await serve_until_stdin_closes(server.serve())

with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
    runner.run(main())
"""

#: The do-nothing relay (bench/edge_floor_relay.py, ``close_visitors``) in the product's place: the same
#: origin, PKI and visitor certificate chain (a leaf of the edge CA, sent with the CA as the product does),
#: the same uvloop; what differs per connection is the product's own work.
_FLOOR_CHILD = r"""
import asyncio, sys
from pathlib import Path

import uvloop

sys.path.insert(0, sys.argv[4])
import edge_floor_relay as relay
from edge_children import listening, serve_until_stdin_closes, write_floor_files
from originlock.testing.pki import TestPki

directory, origin_port, edge_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
write_floor_files(TestPki(), directory)


async def main():
    serve = relay.serve_relay(directory, edge_port, origin_port, server_name="origin.test", close_visitors=True)
    serving = asyncio.get_running_loop().create_task(serve)
    await listening(edge_port)
    await serve_until_stdin_closes(serving)

uvloop.run(main())
"""

REQUEST = b"GET / HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n"
WRK_C4 = ["wrk", "-t1", "-c4", "--timeout", "60s", "-H", "Host: a.example.test", "-H", "Connection: close"]
WRK = ["wrk", "-t1", "-c20", "-d4s", "-H", "Host: a.example.test", "-H", "Connection: close"]


@dataclass
class Options:
    """How the measured edge runs and is driven (the command line's flags)."""

    python: str | None = None
    #: Which edge runs in the measured child: product (EdgeServer) or floor (edge_floor_relay.py).
    kind: str = "product"
    #: The server name the client sends: wrk sends its URL's host, 127.0.0.1 in product_vs_nginx.py.
    sni: str = "a.example.test"
    #: The product child adds the access log file and the WAF recorder hook, as ``serve`` does.
    serve_like: bool = False
    #: wrk's connections instead of this script's client (the counts are then seconds).
    wrk: bool = False
    #: cachegrind simulates the caches (Ir, I1mr, ILmr, Dr, D1mr, DLmr, Dw, D1mw, DLmw).
    cache_sim: bool = False
    #: The callgrind outputs are copied into this directory (for callgrind_annotate).
    keep: str | None = None
    #: Set by each run: the connections that resumed their TLS session (under wrk: the requests made).
    resumed: int = 0

    def child(self, tmp: Path, kind: str, origin_port: int, edge_port: int) -> list[str]:
        """The command line of an edge child (the product or the floor relay) in ``tmp``."""
        script = tmp / f"{kind}_child.py"
        script.write_text(_FLOOR_CHILD if kind == "floor" else _CHILD)
        serve_like = "serve-like" if self.serve_like else "-"
        ports = [str(origin_port), str(edge_port)]
        return [interpreter(self.python), str(script), str(tmp), *ports, str(ROOT / "bench"), serve_like]


def _connections(options: Options, port: int, count: int) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    session = None
    options.resumed = 0
    for _ in range(count):
        raw = socket.create_connection(("127.0.0.1", port), timeout=120)
        with ctx.wrap_socket(raw, server_hostname=options.sni, session=session) as tls:
            tls.sendall(REQUEST)
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected response: {data[:200]!r}")
            options.resumed += bool(tls.session_reused)
            session = tls.session


def _run(options: Options, tool: list[str], tmp: Path, connections: int) -> None:
    """One measured run of the edge child under ``tool``, driven with ``connections`` connections."""
    from originlock.testing.nginx import NginxProcess
    from originlock.testing.require import require_executable

    origin_port, edge_port = free_port(), free_port()
    proc = start_ready([*tool, *options.child(tmp, options.kind, origin_port, edge_port)], "the edge")
    block = origin_block(origin_port, tmp, tmp / "pull-ca.pem")
    nginx = NginxProcess(require_executable("nginx"), tmp / f"nginx-{connections}", block, ports=[origin_port])
    nginx.start()
    try:
        _connections(options, edge_port, 5)  # warm: the origin pool, the hostname's context, the session
        if options.wrk:
            # wrk's own client (as product_vs_nginx.py runs it) for ``connections`` seconds; the requests it
            # made are the count (``resumed`` holds them), the caller divides by their difference.
            out = subprocess.run(
                [*WRK_C4, f"-d{connections}s", f"https://127.0.0.1:{edge_port}/"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            match = re.search(r"(\d+) requests in", out)
            assert match is not None and "Non-2xx" not in out, out
            options.resumed = int(match.group(1))
        else:
            _connections(options, edge_port, connections)
    finally:
        nginx.stop()
        _, err = proc.communicate(timeout=300)  # closes stdin: the edge stops
        if proc.returncode != 0:
            raise SystemExit(f"the edge failed:\n{err[-3000:]}")


def cache_events(options: Options, tmp: Path, connections: int) -> dict[str, int]:
    out = tmp / f"cg-{options.kind}-{connections}"
    _run(options, cachegrind_command(out, cache_sim=options.cache_sim), tmp, connections)
    return cachegrind_events(out)


def instructions_by_object(options: Options, tmp: Path, connections: int) -> dict[str, int]:
    """Self instructions of the edge process by shared object (callgrind, one run of ``connections``)."""
    out = tmp / f"callgrind-{options.kind}-{connections}"
    _run(options, callgrind_command(out), tmp, connections)
    if options.keep:
        shutil.copy(out, Path(options.keep) / out.name)
    return callgrind_by_object(out)


def syscalls(options: Options, tmp: Path, connections: int) -> dict[str, float]:
    out = tmp / f"st-{connections}"
    _run(options, strace_command(out), tmp, connections)
    return strace_counts(out)


def _strace_attached(pid: int, out: Path) -> subprocess.Popen[bytes]:
    strace = subprocess.Popen(["strace", "-f", "-c", "-o", str(out), "-p", str(pid)], stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    return strace


def _stop_strace(strace: subprocess.Popen[bytes]) -> None:
    strace.send_signal(2)
    strace.wait(30)


def _nginx_workers(edge: NginxProcess) -> list[int]:
    assert edge.proc is not None
    found = subprocess.run(["pgrep", "-P", str(edge.proc.pid)], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


def _write_nginx_edge_files(tmp: Path) -> Path:
    """nginx-as-edge's certificate and client certificate, from a PKI of its own; returns its pull CA."""
    from originlock.testing.pki import TestPki

    pki = TestPki()
    pki.write(tmp, "edge", pki.server("a.example.test", ca=pki.edge_ca))
    client = pki.client("zone-a")
    (tmp / "zone-a.pem").write_bytes(client.chain_pem)
    (tmp / "zone-a.key").write_bytes(client.key_pem)
    pull_ca = tmp / "nginx-pull-ca.pem"
    pull_ca.write_text(pki.origin_pull_ca.cert_pem)
    if not (tmp / "origin.pem").exists():
        pki.write(tmp, "origin", pki.server("origin.test", "*.example.test", "127.0.0.1"))
    return pull_ca


def nginx_syscalls(options: Options, tmp: Path, connections: int) -> dict[str, float]:
    """System calls of nginx, as the edge, for ``connections`` new visitor connections."""
    from originlock.testing.nginx import NginxProcess
    from originlock.testing.require import require_executable

    pull_ca = _write_nginx_edge_files(tmp)
    origin_port, edge_port = free_port(), free_port()
    nginx = require_executable("nginx")
    origin = NginxProcess(nginx, tmp / "n-origin", origin_block(origin_port, tmp, pull_ca), ports=[origin_port])
    origin.start()
    block = nginx_edge_block(edge_port, origin_port, tmp, keepalive=64)
    edge = NginxProcess(nginx, tmp / "n-edge", block, ports=[edge_port]).start()
    out = tmp / "st-nginx"
    try:
        _connections(options, edge_port, 5)
        strace = _strace_attached(_nginx_workers(edge)[0], out)
        _connections(options, edge_port, connections)
        time.sleep(0.5)
        _stop_strace(strace)
    finally:
        edge.stop()
        origin.stop()
    return strace_counts(out)


def _user_sys(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def _wrk_requests(port: int) -> int:
    out = subprocess.run([*WRK, f"https://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+) requests in", out)
    assert match is not None, out
    return int(match.group(1))


def _wrk_cpu(pids: list[int], port: int) -> tuple[float, float]:
    """(user, system) CPU µs per request of ``pids`` over one 4 s wrk run (10 ms ticks)."""
    before = [_user_sys(pid) for pid in pids]
    requests = _wrk_requests(port)
    after = [_user_sys(pid) for pid in pids]
    scale = 1e6 / 100 / requests
    user = sum(a[0] - b[0] for a, b in zip(after, before, strict=True)) * scale
    system = sum(a[1] - b[1] for a, b in zip(after, before, strict=True)) * scale
    return user, system


def _wrk_strace(pid: int, port: int) -> dict[str, float]:
    """System calls per request of ``pid`` (its threads too) over one wrk run, strace attached."""
    out = Path(tempfile.mkdtemp()) / "strace"
    strace = _strace_attached(pid, out)
    requests = _wrk_requests(port)
    _stop_strace(strace)
    return strace_counts(out, requests)


def edge_alone_cpu(options: Options, tmp: Path, with_syscalls: bool) -> None:
    """EdgeServer's, nginx's and the floor relay's CPU µs per request (three runs each, interleaved), or
    with ``with_syscalls`` the product's and the floor's system calls per request under wrk."""
    from originlock.testing.nginx import NginxProcess
    from originlock.testing.require import require_executable

    nginx = require_executable("nginx")
    origin_port, edge_port, nginx_port, nginx_origin_port = (free_port() for _ in range(4))
    product = start_ready(options.child(tmp, "product", origin_port, edge_port), "the edge", stderr=subprocess.DEVNULL)
    # The floor relay in its own directory (its own PKI, written by the child) and origin server block.
    floor_dir = tmp / "floor"
    floor_dir.mkdir()
    floor_origin_port, floor_port = free_port(), free_port()
    floor_argv = options.child(floor_dir, "floor", floor_origin_port, floor_port)
    floor = start_ready(floor_argv, "the floor relay", stderr=subprocess.DEVNULL)
    nginx_pull_ca = _write_nginx_edge_files(tmp)
    keepalive = "keepalive_timeout 75s; "
    origin = NginxProcess(
        nginx,
        tmp / "cpu-origin",
        origin_block(origin_port, tmp, tmp / "pull-ca.pem", keepalive)
        + origin_block(nginx_origin_port, tmp, nginx_pull_ca, keepalive)
        + origin_block(floor_origin_port, floor_dir, floor_dir / "pull-ca.pem", keepalive),
        ports=[origin_port, nginx_origin_port, floor_origin_port],
    ).start()
    edge_block = nginx_edge_block(nginx_port, nginx_origin_port, tmp, keepalive=256, extra="keepalive_timeout 75s;")
    edge = NginxProcess(nginx, tmp / "cpu-edge", edge_block, ports=[nginx_port]).start()
    edges = {"product": ([product.pid], edge_port), "nginx": (_nginx_workers(edge), nginx_port)}
    edges["floor"] = ([floor.pid], floor_port)
    try:
        for pids, port in edges.values():
            _wrk_cpu(pids, port)  # warm: pools, contexts, session caches
        if with_syscalls:
            for name in ("product", "floor"):
                pids, port = edges[name]
                print(f"{name} under wrk -c20: " + describe_syscalls(_wrk_strace(pids[0], port), 0.05))
            return
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in edges}
        for _ in range(3):
            for name, (pids, port) in edges.items():
                runs[name].append(_wrk_cpu(pids, port))
        cpu = {name: [user + system for user, system in split] for name, split in runs.items()}
        a, b, f = (statistics.median(cpu[name]) for name in ("product", "nginx", "floor"))
        shown = f"{[round(x) for x in cpu['product']]} / {[round(x) for x in cpu['nginx']]}"
        print(f"EdgeServer alone {a:.1f} µs/request, nginx {b:.1f}: ratio {a / b:.2f} (runs {shown})")
        for name in edges:
            for user, system in runs[name]:
                print(f"  pids {edges[name][0]}: user {user:.0f} µs, system {system:.0f} µs per request")
        print(f"floor relay {f:.1f} µs/request (runs {[round(x) for x in cpu['floor']]}): EdgeServer/floor {a / f:.2f}")
    finally:
        edge.stop()
        origin.stop()
        product.communicate("")
        floor.communicate("")


def _count(options: Options, tmp: Path, low: int, high: int, with_syscalls: bool, by_object: bool) -> None:
    n = high - low
    kind = options.kind
    if by_object:
        a = instructions_by_object(options, tmp, low)
        n_low = options.resumed
        b = instructions_by_object(options, tmp, high)
        if options.wrk:
            n = options.resumed - n_low
            print(f"  wrk requests: {n_low}, {options.resumed}")
        diff = per_unit(a, b, n)
        print(f"{kind}: new visitor connection: {sum(diff.values()):12,.0f} instructions (callgrind, self cost)")
        for v, k in sorted(((v, k) for k, v in diff.items() if abs(v) >= 500), reverse=True):
            print(f"  {k:<28} {v:12,.0f}")
    elif options.cache_sim:
        ea, eb = cache_events(options, tmp, low), cache_events(options, tmp, high)
        print(f"{kind}: new visitor connection: " + " ".join(f"{k}={v:,.0f}" for k, v in per_unit(ea, eb, n).items()))
    else:
        per = (cache_events(options, tmp, high)["Ir"] - cache_events(options, tmp, low)["Ir"]) / n
        print(f"{kind}: new visitor connection: {per:12,.0f} instructions", flush=True)
    print(f"  resumed TLS sessions: {options.resumed} of {high}")
    if with_syscalls:
        sdiff = per_unit(syscalls(options, tmp, low), syscalls(options, tmp, high), n)
        print("  " + describe_syscalls(sdiff, 0.3), flush=True)


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", default="30,130", help="the two connection counts, low,high")
    parser.add_argument("--syscalls", action="store_true")
    parser.add_argument("--nginx-syscalls", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="EdgeServer alone against nginx, CPU per request")
    parser.add_argument(
        "--kind",
        default="product",
        help="comma-separated edges to count: product (EdgeServer), floor (bench/edge_floor_relay.py)",
    )
    parser.add_argument(
        "--by-object",
        action="store_true",
        help="instructions per connection by shared object (callgrind: slower than the cachegrind total)",
    )
    parser.add_argument(
        "--sni", default="a.example.test", help="server name sent (127.0.0.1: what wrk sends in product_vs_nginx.py)"
    )
    parser.add_argument(
        "--serve-like", action="store_true", help="product: with an access log file and the WAF recorder, as serve"
    )
    parser.add_argument("--keep", help="--by-object: copy the callgrind outputs into this directory")
    parser.add_argument("--cache-sim", action="store_true", help="cachegrind's simulated cache misses too")
    parser.add_argument("--wrk", action="store_true", help="--by-object under wrk -c4 (--connections: seconds)")
    parser.add_argument("--python", help="the measured interpreter (a venv's bin/python); default: this one")
    args = parser.parse_args()
    options = Options(
        python=args.python,
        sni=args.sni,
        serve_like=args.serve_like,
        wrk=args.wrk,
        cache_sim=args.cache_sim,
        keep=args.keep,
    )
    low, high = (int(n) for n in args.connections.split(","))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.cpu:
            edge_alone_cpu(options, tmp, args.syscalls)
        elif args.nginx_syscalls:
            counts = nginx_syscalls(options, tmp, high - low)
            per = {k: v / (high - low) for k, v in counts.items()}
            print("nginx, new visitor connection: " + describe_syscalls(per, 0.3))
        else:
            for kind in args.kind.split(","):
                options.kind = kind
                _count(options, tmp, low, high, args.syscalls, args.by_object)


if __name__ == "__main__":
    main()
