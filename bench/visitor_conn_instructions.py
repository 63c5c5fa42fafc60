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
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from origin_dial_instructions import CHILD_PYTHON, _interpreter

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import asyncio, sys, threading
from pathlib import Path

from originlock.edge.config import EdgeConfig
from originlock.edge.loops import loop_factory
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.testing.pki import TestPki, make_route, make_snapshot

directory, origin_port, edge_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pki = TestPki()
cert, key = pki.write(directory, "origin", pki.server("origin.test", "*.example.test", "127.0.0.1"))
(directory / "pull-ca.pem").write_text(pki.origin_pull_ca.cert_pem)
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
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(task.cancel)), daemon=True).start()
    print("ready", flush=True)
    try:
        await server.serve()
    except asyncio.CancelledError:
        pass

with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
    runner.run(main())
"""

#: The do-nothing relay (bench/edge_floor_relay.py, ``close_visitors``) in the product's place: the same
#: origin, PKI and visitor certificate chain (a leaf of the edge CA, sent with the CA as the product does),
#: the same uvloop; what differs per connection is the product's own work.
_FLOOR_CHILD = r"""
import sys
from pathlib import Path

import uvloop

sys.path.insert(0, sys.argv[4])
import edge_floor_relay as relay
from originlock.testing.pki import TestPki

directory, origin_port, edge_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pki = TestPki()
pki.write(directory, "origin", pki.server("origin.test", "*.example.test", "127.0.0.1"))
(directory / "pull-ca.pem").write_text(pki.origin_pull_ca.cert_pem)
(directory / "origin-ca.pem").write_text(pki.origin_ca.cert_pem)
leaf = pki.server("a.example.test", ca=pki.edge_ca)
(directory / "edge.pem").write_text(leaf.cert_pem + pki.edge_ca.cert_pem)
(directory / "edge.key").write_bytes(leaf.key_pem)
client = pki.client("zone-a")
(directory / "zone-a-chain.pem").write_bytes(client.chain_pem)
(directory / "zone-a.key").write_bytes(client.key_pem)


async def main():
    import asyncio, threading
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(task.cancel)), daemon=True).start()
    serve = relay.serve_relay(directory, edge_port, origin_port, server_name="origin.test", close_visitors=True)
    serving = loop.create_task(serve)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", edge_port)):
                break
        except OSError:
            await asyncio.sleep(0.05)
    print("ready", flush=True)
    try:
        await serving
    except asyncio.CancelledError:
        pass

import socket
uvloop.run(main())
"""

#: Set by --kind: which edge runs in the measured child.
KIND = ["product"]
#: The server name the client sends (--sni): wrk sends its URL's host, 127.0.0.1 in product_vs_nginx.py.
SNI = ["a.example.test"]
#: --serve-like: the product child adds the access log file and the WAF recorder hook, as ``serve`` does.
SERVE_LIKE = [False]
WRK_C4 = ["wrk", "-t1", "-c4", "--timeout", "60s", "-H", "Host: a.example.test", "-H", "Connection: close"]
#: --wrk: wrk's connections instead of this script's client (--connections are then seconds).
WRK_LOAD: list[bool] = []
#: --cpu --syscalls: system calls per request under wrk instead of CPU.
WRK_SYSCALLS: list[bool] = []
#: --cpu: the floor relay's CPU µs per request, measured in the same run.
FLOOR_CPU: list[float] = []
#: Connections of the last _connections call that resumed their TLS session.
RESUMED = [0]

REQUEST = b"GET / HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _connections(port: int, count: int) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    session = None
    RESUMED[0] = 0
    for _ in range(count):
        raw = socket.create_connection(("127.0.0.1", port), timeout=120)
        with ctx.wrap_socket(raw, server_hostname=SNI[0], session=session) as tls:
            tls.sendall(REQUEST)
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected response: {data[:200]!r}")
            RESUMED[0] += bool(tls.session_reused)
            session = tls.session


def _run(tool: list[str], tmp: Path, connections: int) -> None:
    from originlock.testing.nginx import NginxProcess
    from originlock.testing.require import require_executable

    origin_port, edge_port = _free_port(), _free_port()
    child = tmp / "child.py"
    child.write_text(_FLOOR_CHILD if KIND[0] == "floor" else _CHILD)
    proc = subprocess.Popen(
        [
            *tool,
            _interpreter(),
            str(child),
            str(tmp),
            str(origin_port),
            str(edge_port),
            str(ROOT / "bench"),
            "serve-like" if SERVE_LIKE[0] else "-",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the edge did not start:\n{proc.communicate()[1][-3000:]}")
    block = (
        f"server {{ listen 127.0.0.1:{origin_port} ssl; ssl_certificate {tmp}/origin.pem;\n"
        f"  ssl_certificate_key {tmp}/origin.key; ssl_client_certificate {tmp}/pull-ca.pem;\n"
        '  ssl_verify_client on; location / { return 200 "ok\\n"; } }\n'
    )
    nginx = NginxProcess(require_executable("nginx"), tmp / f"nginx-{connections}", block, ports=[origin_port])
    nginx.start()
    try:
        _connections(edge_port, 5)  # warm: the origin pool, the hostname's context, the session
        if WRK_LOAD:
            # wrk's own client (as product_vs_nginx.py runs it) for ``connections`` seconds; the requests it
            # made are the count (RESUMED holds them), the caller divides by their difference.
            out = subprocess.run(
                [*WRK_C4, f"-d{connections}s", f"https://127.0.0.1:{edge_port}/"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            match = re.search(r"(\d+) requests in", out)
            assert match is not None and "Non-2xx" not in out, out
            RESUMED[0] = int(match.group(1))
        else:
            _connections(edge_port, connections)
    finally:
        nginx.stop()
        _, err = proc.communicate(timeout=300)  # closes stdin: the edge stops
        if proc.returncode != 0:
            raise SystemExit(f"the edge failed:\n{err[-3000:]}")


def instructions(tmp: Path, connections: int) -> int:
    return cache_events(tmp, connections)["Ir"]


#: --keep DIR: the callgrind outputs are copied there (for callgrind_annotate).
KEEP: list[str] = []
#: --cache-sim: cachegrind simulates the caches (Ir, I1mr, ILmr, Dr, D1mr, DLmr, Dw, D1mw, DLmw).
CACHE_SIM: list[bool] = []


def cache_events(tmp: Path, connections: int) -> dict[str, int]:
    out = tmp / f"cg-{KIND[0]}-{connections}"
    sim = "--cache-sim=yes" if CACHE_SIM else "--cache-sim=no"
    _run(["valgrind", "--tool=cachegrind", sim, f"--cachegrind-out-file={out}"], tmp, connections)
    text = out.read_text()
    events = re.search(r"^events:\s+(.+)$", text, re.MULTILINE)
    summary = re.search(r"^summary:\s+(.+)$", text, re.MULTILINE)
    if events is None or summary is None:
        raise SystemExit(f"no summary in {out}")
    return dict(zip(events.group(1).split(), map(int, summary.group(1).split()), strict=True))


def _object_group(path: str) -> str:
    """A shared object's group in the per-object table."""
    name = Path(path).name
    for prefix, group in (
        ("libcrypto", "libcrypto"),
        ("libssl", "libssl"),
        ("libc.so", "libc"),
        ("libc-", "libc"),
        ("ld-linux", "ld.so"),
        ("python", "python"),
        ("libpython", "python"),
        ("_ssl.", "_ssl (CPython)"),
        ("loop.cpython", "uvloop (+libuv)"),
        ("vgpreload", "valgrind"),
        ("libffi", "ctypes/libffi"),
        ("_ctypes", "ctypes/libffi"),
    ):
        if name.startswith(prefix):
            return group
    if "__mypyc" in name:
        return "originlock (mypyc)"
    if name.startswith(("_http", "parser.cpython", "url_parser")):
        return "httptools"
    return name


def instructions_by_object(tmp: Path, connections: int) -> dict[str, int]:
    """Self instructions of the edge process by shared object (callgrind, one run of ``connections``)."""
    out = tmp / f"callgrind-{KIND[0]}-{connections}"
    tool = ["valgrind", "--tool=callgrind", "--compress-strings=no", "--compress-pos=no", f"--callgrind-out-file={out}"]
    _run(tool, tmp, connections)
    if KEEP:
        import shutil

        shutil.copy(out, Path(KEEP[0]) / out.name)
    totals: dict[str, int] = {}
    current = "?"
    skip = False
    with out.open() as f:
        for line in f:
            if line[0].isdigit() or line[0] in "+-*":
                if skip:  # the inclusive cost of the call just named: not this function's own
                    skip = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    totals[current] = totals.get(current, 0) + int(fields[1])
            elif line.startswith("ob="):
                current = _object_group(line[3:].strip())
            elif line.startswith("calls="):
                skip = True
    return totals


def syscalls(tmp: Path, connections: int) -> dict[str, int]:
    out = tmp / f"st-{connections}"
    _run(["strace", "-f", "-c", "-o", str(out)], tmp, connections)
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3])
    return counts


def nginx_syscalls(tmp: Path, connections: int) -> dict[str, int]:
    """System calls of nginx, as the edge, for ``connections`` new visitor connections."""
    import time

    from originlock.testing.nginx import NginxProcess
    from originlock.testing.pki import TestPki
    from originlock.testing.require import require_executable

    pki = TestPki()
    pki.write(tmp, "origin", pki.server("origin.test", "*.example.test", "127.0.0.1"))
    edge_leaf = pki.server("a.example.test", ca=pki.edge_ca)
    pki.write(tmp, "edge", edge_leaf)
    client = pki.client("zone-a")
    (tmp / "zone-a.pem").write_bytes(client.chain_pem)
    (tmp / "zone-a.key").write_bytes(client.key_pem)
    (tmp / "pull-ca.pem").write_text(pki.origin_pull_ca.cert_pem)
    origin_port, edge_port = _free_port(), _free_port()
    nginx = require_executable("nginx")
    origin = NginxProcess(
        nginx,
        tmp / "n-origin",
        f"server {{ listen 127.0.0.1:{origin_port} ssl; ssl_certificate {tmp}/origin.pem;\n"
        f"  ssl_certificate_key {tmp}/origin.key; ssl_client_certificate {tmp}/pull-ca.pem;\n"
        '  ssl_verify_client on; location / { return 200 "ok\\n"; } }\n',
        ports=[origin_port],
    ).start()
    edge = NginxProcess(
        nginx,
        tmp / "n-edge",
        "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:EDGE:10m;\n"
        f"upstream o {{ server 127.0.0.1:{origin_port}; keepalive 64; }}\n"
        f"server {{ listen 127.0.0.1:{edge_port} ssl; server_name a.example.test;\n"
        f"  ssl_certificate {tmp}/edge.pem; ssl_certificate_key {tmp}/edge.key;\n"
        '  proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;\n'
        f"  proxy_ssl_certificate {tmp}/zone-a.pem; proxy_ssl_certificate_key {tmp}/zone-a.key;\n"
        "  proxy_ssl_session_reuse on; location / { proxy_pass https://o; } }\n",
        ports=[edge_port],
    ).start()
    out = tmp / "st-nginx"
    try:
        _connections(edge_port, 5)
        assert edge.proc is not None
        workers = subprocess.run(["pgrep", "-P", str(edge.proc.pid)], capture_output=True, text=True).stdout.split()
        strace = subprocess.Popen(["strace", "-c", "-o", str(out), "-p", workers[0]], stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached
        _connections(edge_port, connections)
        time.sleep(0.5)
        strace.send_signal(2)
        strace.wait(30)
    finally:
        edge.stop()
        origin.stop()
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3])
    return counts


WRK = ["wrk", "-t1", "-c20", "-d4s", "-H", "Host: a.example.test", "-H", "Connection: close"]


def _ticks(pid: int) -> int:
    return sum(_user_sys(pid))


def _user_sys(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


#: (pids, user µs, system µs per request) of each _wrk_cpu run.
SPLITS: list[tuple[list[int], float, float]] = []


def _wrk_cpu(pids: list[int], port: int) -> float:
    """CPU µs per request of ``pids`` over one 4 s wrk run (10 ms ticks)."""
    before = sum(map(_ticks, pids))
    split = [_user_sys(pid) for pid in pids]
    out = subprocess.run(
        [*WRK, f"https://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spent = sum(map(_ticks, pids)) - before
    match = re.search(r"(\d+) requests in", out)
    assert match is not None, out
    after = [_user_sys(pid) for pid in pids]
    scale = 1e6 / 100 / int(match.group(1))
    user = sum(a[0] - b[0] for a, b in zip(after, split, strict=True)) * scale
    system = sum(a[1] - b[1] for a, b in zip(after, split, strict=True)) * scale
    SPLITS.append((pids, user, system))
    return spent / 100 / int(match.group(1)) * 1e6


def _wrk_strace(pid: int, port: int) -> dict[str, float]:
    """System calls per request of ``pid`` (its threads too) over one wrk run, strace attached."""
    import time

    out = Path(tempfile.mkdtemp()) / "strace"
    strace = subprocess.Popen(["strace", "-f", "-c", "-o", str(out), "-p", str(pid)], stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    result = subprocess.run([*WRK, f"https://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    strace.send_signal(2)
    strace.wait(30)
    match = re.search(r"(\d+) requests in", result)
    assert match is not None, result
    requests = int(match.group(1))
    counts: dict[str, float] = {}
    for line in out.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3]) / requests
    return counts


def edge_alone_cpu(tmp: Path) -> tuple[list[float], list[float]]:
    """(EdgeServer's, nginx's) CPU µs per request, three runs each, interleaved."""
    from originlock.testing.nginx import NginxProcess
    from originlock.testing.pki import TestPki
    from originlock.testing.require import require_executable

    nginx = require_executable("nginx")
    origin_port, edge_port, nginx_port, nginx_origin_port = (_free_port() for _ in range(4))
    child = tmp / "child.py"
    child.write_text(_CHILD)
    proc = subprocess.Popen(
        [_interpreter(), str(child), str(tmp), str(origin_port), str(edge_port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the edge did not start")
    # The floor relay in its own directory (its own PKI, written by the child) and origin server block.
    floor_dir = tmp / "floor"
    floor_dir.mkdir()
    floor_origin_port, floor_port = _free_port(), _free_port()
    floor_child = tmp / "floor_child.py"
    floor_child.write_text(_FLOOR_CHILD)
    floor = subprocess.Popen(
        [
            _interpreter(),
            str(floor_child),
            str(floor_dir),
            str(floor_origin_port),
            str(floor_port),
            str(ROOT / "bench"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert floor.stdout is not None
    if floor.stdout.readline().strip() != "ready":
        raise SystemExit("the floor relay did not start")
    # nginx's client certificate comes from a PKI of its own: an origin listener trusting that one's pull CA.
    pki = TestPki()
    pki.write(tmp, "edge", pki.server("a.example.test", ca=pki.edge_ca))
    client = pki.client("zone-a")
    (tmp / "zone-a.pem").write_bytes(client.chain_pem)
    (tmp / "zone-a.key").write_bytes(client.key_pem)
    (tmp / "nginx-pull-ca.pem").write_text(pki.origin_pull_ca.cert_pem)
    listen = f"ssl_certificate {tmp}/origin.pem; ssl_certificate_key {tmp}/origin.key; ssl_verify_client on;"
    origin = NginxProcess(
        nginx,
        tmp / "cpu-origin",
        f"server {{ listen 127.0.0.1:{origin_port} ssl; {listen} ssl_client_certificate {tmp}/pull-ca.pem;\n"
        '  keepalive_timeout 75s; location / { return 200 "ok\\n"; } }\n'
        f"server {{ listen 127.0.0.1:{nginx_origin_port} ssl; {listen}\n"
        f"  ssl_client_certificate {tmp}/nginx-pull-ca.pem;\n"
        '  keepalive_timeout 75s; location / { return 200 "ok\\n"; } }\n'
        f"server {{ listen 127.0.0.1:{floor_origin_port} ssl; ssl_certificate {floor_dir}/origin.pem;\n"
        f"  ssl_certificate_key {floor_dir}/origin.key; ssl_verify_client on;\n"
        f"  ssl_client_certificate {floor_dir}/pull-ca.pem;\n"
        '  keepalive_timeout 75s; location / { return 200 "ok\\n"; } }\n',
        ports=[origin_port, nginx_origin_port, floor_origin_port],
    ).start()
    edge = NginxProcess(
        nginx,
        tmp / "cpu-edge",
        "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:EDGE:10m; keepalive_timeout 75s;\n"
        f"upstream o {{ server 127.0.0.1:{nginx_origin_port}; keepalive 256; }}\n"
        f"server {{ listen 127.0.0.1:{nginx_port} ssl; server_name a.example.test;\n"
        f"  ssl_certificate {tmp}/edge.pem; ssl_certificate_key {tmp}/edge.key;\n"
        '  proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;\n'
        f"  proxy_ssl_certificate {tmp}/zone-a.pem; proxy_ssl_certificate_key {tmp}/zone-a.key;\n"
        "  proxy_ssl_session_reuse on; location / { proxy_pass https://o; } }\n",
        ports=[nginx_port],
    ).start()
    try:
        assert edge.proc is not None
        found = subprocess.run(["pgrep", "-P", str(edge.proc.pid)], capture_output=True, text=True).stdout
        nginx_pids = [int(pid) for pid in found.split()]
        _wrk_cpu([proc.pid], edge_port)  # warm: pools, contexts, session caches
        _wrk_cpu(nginx_pids, nginx_port)
        _wrk_cpu([floor.pid], floor_port)
        if WRK_SYSCALLS:
            for name, pid, port in (("product", proc.pid, edge_port), ("floor", floor.pid, floor_port)):
                counts = _wrk_strace(pid, port)
                shown = sorted(((v, k) for k, v in counts.items() if v >= 0.05), reverse=True)
                total = sum(counts.values())
                print(
                    f"{name} under wrk -c20: {total:5.1f} syscalls/request: "
                    + " ".join(f"{k}={v:.2f}" for v, k in shown)
                )
            return [], []
        ours, theirs = [], []
        for _ in range(3):
            ours.append(_wrk_cpu([proc.pid], edge_port))
            theirs.append(_wrk_cpu(nginx_pids, nginx_port))
            FLOOR_CPU.append(_wrk_cpu([floor.pid], floor_port))
        return ours, theirs
    finally:
        edge.stop()
        origin.stop()
        proc.communicate("")
        floor.communicate("")


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
    if args.python:
        CHILD_PYTHON.append(args.python)
    low, high = (int(n) for n in args.connections.split(","))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.cpu:
            if args.syscalls:
                WRK_SYSCALLS.append(True)
                edge_alone_cpu(tmp)
                return
            ours, theirs = edge_alone_cpu(tmp)
            a, b = statistics.median(ours), statistics.median(theirs)
            runs = f"{[round(x) for x in ours]} / {[round(x) for x in theirs]}"
            print(f"EdgeServer alone {a:.1f} µs/request, nginx {b:.1f}: ratio {a / b:.2f} (runs {runs})")
            for pids, user, system in SPLITS[3:]:
                print(f"  pids {pids}: user {user:.0f} µs, system {system:.0f} µs per request")
            f = statistics.median(FLOOR_CPU)
            print(
                f"floor relay {f:.1f} µs/request (runs {[round(x) for x in FLOOR_CPU]}): EdgeServer/floor {a / f:.2f}"
            )
            return
        if args.nginx_syscalls:
            counts = nginx_syscalls(tmp, high - low)
            shown = sorted(((v / (high - low), k) for k, v in counts.items() if v / (high - low) >= 0.3), reverse=True)
            total = sum(counts.values()) / (high - low)
            print(
                f"nginx, new visitor connection: {total:5.1f} syscalls: " + " ".join(f"{k}={v:.1f}" for v, k in shown)
            )
            return
        SNI[0] = args.sni
        if args.keep:
            KEEP.append(args.keep)
        if args.cache_sim:
            CACHE_SIM.append(True)
        if args.wrk:
            WRK_LOAD.append(True)
        SERVE_LIKE[0] = args.serve_like
        for kind in args.kind.split(","):
            KIND[0] = kind
            _count(kind, tmp, low, high, args.syscalls, args.by_object)


def _count(kind: str, tmp: Path, low: int, high: int, with_syscalls: bool, by_object: bool) -> None:
    n = high - low
    if by_object:
        a = instructions_by_object(tmp, low)
        n_low = RESUMED[0]
        b = instructions_by_object(tmp, high)
        if WRK_LOAD:
            n = RESUMED[0] - n_low
            print(f"  wrk requests: {n_low}, {RESUMED[0]}")
        diff = {k: (b.get(k, 0) - a.get(k, 0)) / n for k in set(a) | set(b)}
        print(f"{kind}: new visitor connection: {sum(diff.values()):12,.0f} instructions (callgrind, self cost)")
        for v, k in sorted(((v, k) for k, v in diff.items() if abs(v) >= 500), reverse=True):
            print(f"  {k:<28} {v:12,.0f}")
    elif CACHE_SIM:
        ea = cache_events(tmp, low)
        eb = cache_events(tmp, high)
        per_event = {k: (eb[k] - ea[k]) / n for k in ea}
        print(f"{kind}: new visitor connection: " + " ".join(f"{k}={v:,.0f}" for k, v in per_event.items()))
    else:
        per = (instructions(tmp, high) - instructions(tmp, low)) / n
        print(f"{kind}: new visitor connection: {per:12,.0f} instructions", flush=True)
    print(f"  resumed TLS sessions: {RESUMED[0]} of {high}")
    if with_syscalls:
        sa, sb = syscalls(tmp, low), syscalls(tmp, high)
        sdiff = {k: (sb.get(k, 0) - sa.get(k, 0)) / n for k in set(sa) | set(sb)}
        shown = sorted(((v, k) for k, v in sdiff.items() if v >= 0.3), reverse=True)
        print(f"  {sum(sdiff.values()):5.1f} syscalls: " + " ".join(f"{k}={v:.1f}" for v, k in shown), flush=True)


if __name__ == "__main__":
    main()
