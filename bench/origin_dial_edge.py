#!/usr/bin/env python3
"""Instructions per request of the whole edge when every request dials a new mTLS origin connection.

A profiling aid for issue 11's "new origin connection per request" shapes (product_vs_nginx.py's
``new-origin-resume`` and ``new-origin-full``). ``bench/origin_dial_instructions.py`` counts the dial alone
(``Connector.connect`` and one exchange); this one counts what the edge does around it too: the visitor's
request in, routing, the pool's miss, the dial, the response out. The edge (``EdgeServer`` on uvloop, a
Full (strict) zone with its client certificate, as product_vs_nginx.py configures one) runs in a child
process under ``valgrind --tool=cachegrind`` twice, with two request counts; the difference divided by the
difference removes start-up. The visitor is this script: one keep-alive TLS connection, one request after
the other, so no visitor handshake is counted. The origin is nginx requiring the client certificate with
``keepalive_timeout 0`` (a new origin connection per request), with session resumption (``resume``) or
without (``full``).

``floor``: the do-nothing relay (bench/edge_floor_relay.py, ``dial_origins``) in the edge's place, the same
origin, PKI and client; product - floor is what the edge's own code costs per request.

    python bench/origin_dial_edge.py [--kinds product,floor] [--origins resume,full] [--requests 40,140]
                                     [--by-object [--keep DIR]]

``--by-object``: callgrind instead of cachegrind, the instructions per request by shared object (the
interpreter, the compiled modules, libssl, uvloop...); ``--keep DIR`` copies the callgrind outputs there
(for ``callgrind_annotate``).

The measured ``originlock`` is the one this interpreter imports (``PYTHONPATH`` a compiled tree), or
``--python``'s. Needs valgrind and nginx.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import ssl
import sys
import tempfile
from pathlib import Path

from valgrind_counts import (
    cachegrind_command,
    cachegrind_events,
    callgrind_by_object,
    callgrind_command,
    free_port,
    interpreter,
    origin_block,
    per_unit,
    start_ready,
)

ROOT = Path(__file__).resolve().parents[1]

_PRODUCT = r"""
import asyncio, sys
from pathlib import Path

sys.path.insert(0, sys.argv[4])
from edge_children import serve_until_stdin_closes, write_origin_files
from originlock.edge.config import EdgeConfig
from originlock.edge.loops import loop_factory
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.snapshot.model import SslMode
from originlock.testing.pki import TestPki, make_route, make_snapshot

directory, origin_port, edge_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pki = TestPki()
write_origin_files(pki, directory)
route = make_route("a.example.test", ssl_mode=SslMode.STRICT, client_cert=pki.client("zone-a"))
source = MemorySnapshotSource(make_snapshot(pki, route))
config = EdgeConfig(http=None, https=("127.0.0.1", edge_port), origin_https_port=origin_port, loop="uvloop")


async def main():
    server = EdgeServer(config, source)
    await server.start()
    await serve_until_stdin_closes(server.serve())

with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
    runner.run(main())
"""

_FLOOR = r"""
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
    serve = relay.serve_relay(directory, edge_port, origin_port, server_name="a.example.test", dial_origins=True)
    serving = asyncio.get_running_loop().create_task(serve)
    await listening(edge_port)
    await serve_until_stdin_closes(serving)

uvloop.run(main())
"""

REQUEST = b"GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n"
SESSIONS = {
    "resume": "ssl_session_cache shared:R:1m; ssl_session_tickets on; ",
    "full": "ssl_session_cache off; ssl_session_tickets off; ",
}


def _requests(port: int, count: int) -> None:
    """``count`` requests, one after the other, on one keep-alive visitor connection."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=120), server_hostname="a.example.test"
    ) as tls:
        buffered = b""
        for _ in range(count):
            tls.sendall(REQUEST)
            while b"\r\n\r\n" not in buffered:
                chunk = tls.recv(65536)
                if not chunk:
                    raise SystemExit(f"the edge closed the connection: {buffered[:200]!r}")
                buffered += chunk
            head, _, buffered = buffered.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected response: {head[:300]!r}")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(buffered) < length:
                buffered += tls.recv(65536)
            buffered = buffered[length:]


def _count(
    python: str | None, kind: str, origin: str, requests: int, tmp: Path, keep: str | None = None
) -> dict[str, int]:
    """The events of one run: ``{"Ir": n}`` by cachegrind, or with ``keep`` (``""``: do not copy) the
    instructions by shared object, by callgrind."""
    from originlock.testing.nginx import NginxProcess
    from originlock.testing.require import require_executable

    run_dir = tmp / f"{kind}-{origin}-{requests}"
    run_dir.mkdir()
    script = run_dir / "child.py"
    script.write_text(_FLOOR if kind == "floor" else _PRODUCT)
    origin_port, edge_port = free_port(), free_port()
    out = run_dir / ("callgrind.out" if keep is not None else "cachegrind.out")
    tool = callgrind_command(out) if keep is not None else cachegrind_command(out)
    argv = [interpreter(python), str(script), str(run_dir), str(origin_port), str(edge_port), str(ROOT / "bench")]
    proc = start_ready([*tool, *argv], f"the {kind} edge")
    extra = SESSIONS[origin] + "keepalive_timeout 0; "
    block = origin_block(origin_port, run_dir, run_dir / "pull-ca.pem", extra)
    nginx = NginxProcess(require_executable("nginx"), run_dir / "nginx", block, ports=[origin_port]).start()
    try:
        _requests(edge_port, 5)  # warm: the context, the session, the route's caches
        _requests(edge_port, requests)
    finally:
        nginx.stop()
        _, err = proc.communicate(timeout=600)  # closes stdin: the edge stops
        if proc.returncode != 0:
            raise SystemExit(f"the {kind} edge failed:\n{err[-3000:]}")
    if keep is None:
        return cachegrind_events(out)
    if keep:
        shutil.copy(out, Path(keep) / f"callgrind-{kind}-{origin}-{requests}")
    return callgrind_by_object(out)


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="product,floor")
    parser.add_argument("--origins", default="resume,full")
    parser.add_argument("--requests", default="40,140", help="the two request counts, low,high")
    parser.add_argument("--python", help="the measured interpreter (a venv's bin/python); default: this one")
    parser.add_argument("--by-object", action="store_true", help="callgrind: instructions by shared object")
    parser.add_argument("--keep", help="--by-object: copy the callgrind outputs into this directory")
    args = parser.parse_args()
    low, high = (int(n) for n in args.requests.split(","))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for origin in args.origins.split(","):
            per: dict[str, float] = {}
            for kind in args.kinds.split(","):
                if args.by_object:
                    a, b = (_count(args.python, kind, origin, n, tmp, args.keep or "") for n in (low, high))
                    diff = per_unit(a, b, high - low)
                    per[kind] = sum(diff.values())
                    print(f"{origin:6} {kind:8} {per[kind]:12,.0f} instructions/request (callgrind, self cost)")
                    for value, name in sorted(((v, k) for k, v in diff.items() if abs(v) >= 500), reverse=True):
                        print(f"    {name:<28} {value:12,.0f}", flush=True)
                    continue
                a, b = (_count(args.python, kind, origin, n, tmp)["Ir"] for n in (low, high))
                per[kind] = (b - a) / (high - low)
                print(f"{origin:6} {kind:8} {per[kind]:12,.0f} instructions/request", flush=True)
            if "product" in per and "floor" in per:
                print(f"{origin:6} product - floor {per['product'] - per['floor']:12,.0f}", flush=True)


if __name__ == "__main__":
    main()
