"""In-process cost of the edge's whole Python request path, without sockets, TLS or other processes.

One visitor connection and one pooled origin connection with fake transports; each iteration feeds wrk's
request to the visitor side, runs the grouped sends, feeds nginx's response to the origin side and runs
them again: exactly the callback path of ``edge/exchange.py`` (an idle pooled connection, a response whole
in one read: no task, no future) behind ``edge/http1.py`` that the end-to-end benchmark exercises, minus
the TLS, uvloop and kernel work the do-nothing floor also pays. CPU time of the process is measured (so
other jobs on the box slow it less than wall time). It is not a replacement for
``edge_vs_nginx.py`` (the target is CPU per request end to end), but it moves ~10x less between runs on a
shared box, so it shows sub-microsecond steps the end-to-end numbers cannot.

``--product`` runs the request path as ``originlock serve`` configures it, so that the profile is what
users run: the snapshot compiled from a store configured through the v4 API exactly as
``bench/product_vs_nginx.py`` configures it (zone, proxied records, Full (strict), the zone's client
certificate, the zone's two Origin Rules), the access log on (to a temporary file), and the WAF hook
wrapped in the dashboard's ``WafRecorder`` as ``serve`` wires it. Without it: a memory snapshot with one
route, no access log and the bare hook (the edge's own floor). ``--waf25`` (with ``--product``) sends the
request to that benchmark's ``waf25`` hostname instead, whose zone has its 25 custom rules (none matching).

    python bench/edge_inprocess.py [--src DIR ...] [--product [--waf25]]   # DIR: another src/ tree, alternating
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REQUEST = b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
#: What wrk sends to the product benchmark's pooled hostname.
PRODUCT_REQUEST = b"GET / HTTP/1.1\r\nHost: a.bench.test\r\n\r\n"
#: What wrk sends to its ``waf25`` hostname (the zone with 25 custom rules).
WAF25_REQUEST = b"GET / HTTP/1.1\r\nHost: a.waf.test\r\n\r\n"
#: What the benchmark's nginx origin answers (the echoed client DN is the body).
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 20\r\nConnection: keep-alive\r\n\r\nCN=zone-a,O=x,C=xxxx"
)


class _Transport:
    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra
        self.writes = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise SystemExit("the edge closed a connection: the callback path was not taken")

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Loop:
    """``call_soon`` callbacks run by hand; timers are scheduled on a real loop that never runs."""

    def __init__(self) -> None:
        self.soon: list[Any] = []
        self._timers = asyncio.new_event_loop()

    def call_soon(self, callback: Any, *args: Any) -> None:
        self.soon.append(callback)

    def call_at(self, when: float, callback: Any) -> asyncio.TimerHandle:
        return asyncio.TimerHandle(when, callback, (), self._timers)

    def time(self) -> float:
        return time.monotonic()

    def create_task(self, coro: Any) -> None:
        coro.close()
        # Printed as well as raised: the connection closes on the way out, and that guard's exit wins.
        message = "the task path was taken: this measures the callback path only"
        print(message, file=sys.stderr)
        raise SystemExit(message)

    def run_soon(self) -> None:
        while self.soon:
            callbacks, self.soon = self.soon, []
            for callback in callbacks:
                callback()


def product_snapshot(tmp: Path) -> Any:
    """The snapshot ``originlock serve`` runs for ``bench/product_vs_nginx.py``'s configuration: a real
    store (SQLite under ``tmp``), configured through the v4 API by that benchmark's own ``configure``."""
    import warnings
    from datetime import UTC, datetime

    from product_vs_nginx import V4, configure

    warnings.simplefilter("ignore", DeprecationWarning)  # starlette's TestClient over httpx: not ours to fix

    from originlock.store.compile import compile_snapshot
    from originlock.testing.api_env import api_env
    from originlock.testing.pki import TestPki
    from originlock.tls.issue import issue_leaf

    pki = TestPki()
    leaf = issue_leaf(pki.origin_pull_ca, "zone-a", now=pki.now)
    with api_env(f"sqlite:///{tmp / 'store.db'}", tmp / "data") as env:
        env.client.base_url = env.client.base_url.join(V4)  # configure() speaks paths under /client/v4
        env.client.headers.update(env.admin)
        # The no-keep-alive origins' ports only appear in the Origin Rules (never dialled here).
        configure(env.client, {"pooled": 9443, "resume": 9444, "full": 9445}, (leaf.cert_pem, leaf.key_pem.decode()))
        return compile_snapshot(env.store, datetime.now(UTC))


def measure(iterations: int, repeats: int, product: bool = False, waf25: bool = False) -> list[float]:
    import tempfile

    from originlock.edge.config import EdgeConfig
    from originlock.edge.http1 import Http1Connection
    from originlock.edge.snapshots import MemorySnapshotSource
    from originlock.edge.state import EdgeState
    from originlock.origin.connection import OriginConnection
    from originlock.pipeline import PipelineSettings, RequestContext, run_until_origin
    from originlock.pipeline.builtin.waf import EdgeWaf
    from originlock.proto.http1 import RequestParser
    from originlock.snapshot.model import SslMode
    from originlock.testing.pki import TestPki, make_route, make_snapshot

    tmp = Path(tempfile.mkdtemp(prefix="edge-inprocess-"))
    config = EdgeConfig(origin_https_port=9443)
    request_bytes = REQUEST
    # ``originlock serve`` always installs the WAF hook; the zone has no rules, as in edge_vs_nginx.py.
    waf: Any = EdgeWaf(time.monotonic, time.time)
    if product:
        from originlock.dashboard import WafRecorder

        snapshot = product_snapshot(tmp)
        config = EdgeConfig(origin_https_port=9443, access_log=str(tmp / "access.log"))
        request_bytes = WAF25_REQUEST if waf25 else PRODUCT_REQUEST
        waf = WafRecorder(waf, time.time)  # as cli/serve.py wires it
    else:
        pki = TestPki()
        snapshot = make_snapshot(pki, make_route("a.test", ssl_mode=SslMode.STRICT, client_cert=pki.client("zone-a")))
    loop = _Loop()
    state = EdgeState(loop, config, MemorySnapshotSource(snapshot), waf=waf)  # type: ignore[arg-type]
    visitor = Http1Connection(state, "https")
    visitor_transport = _Transport({"peername": ("127.0.0.1", 40000)})
    visitor.connection_made(visitor_transport)  # type: ignore[arg-type]
    origin = OriginConnection(loop)  # type: ignore[arg-type]
    origin_transport = _Transport({})
    origin.connection_made(origin_transport)  # type: ignore[arg-type]
    request = RequestParser().feed(request_bytes)[0]
    ctx = RequestContext(ray_id="-", snapshot=snapshot, scheme="https", client_ip="", client_port=0, started=0.0)
    forward = run_until_origin(request, ctx, PipelineSettings(origin_https_port=9443))  # type: ignore[arg-type]
    origin.key = forward.peer.pool_key()  # type: ignore[union-attr]
    state.pool._state.opened(origin.key)  # the one pooled origin connection, as if dialled
    state.pool.release(origin, True)

    def one() -> None:
        visitor.data_received(request_bytes)
        loop.run_soon()  # the request head is written to the origin
        origin.data_received(RESPONSE)
        loop.run_soon()  # the response is flushed to the visitor

    for _ in range(iterations // 10):
        one()
    results = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(iterations):
            one()
        results.append((time.process_time() - start) / iterations * 1e6)
    # Every request went to the origin and its response back to the visitor (not, say, a local error page).
    requests = iterations // 10 + repeats * iterations
    if (origin_transport.writes, visitor_transport.writes) != (requests, requests):
        raise SystemExit(
            f"{requests} requests, but {origin_transport.writes} writes to the origin and"
            f" {visitor_transport.writes} to the visitor: not the path this measures"
        )
    if product:
        state.book.access_log.close()
        lines = (tmp / "access.log").read_bytes().count(b"\n")
        if lines != requests:
            raise SystemExit(f"{requests} requests but {lines} access-log lines: the log was not on")
    shutil.rmtree(tmp, ignore_errors=True)
    return sorted(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", default=[], help="also measure this src/ tree (alternating)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30000)
    parser.add_argument("--product", action="store_true", help="the product's configuration (see above)")
    parser.add_argument("--waf25", action="store_true", help="with --product: the zone with 25 custom rules")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.waf25 and not args.product:
        parser.error("--waf25 needs --product")
    if args.child is not None:
        if args.child:
            sys.path.insert(0, args.child)  # before the editable install's path
            import originlock

            # A tree without originlock/__init__.py would be a namespace package, silently losing to the
            # installed one (it happened with a half-extracted /tmp/base during this work).
            if not str(originlock.__file__).startswith(args.child):
                raise SystemExit(f"{args.child} is not what was imported ({originlock.__file__})")
        results = measure(args.iterations, 7, args.product, args.waf25)
        import originlock

        print(f"{results[0]:.2f} {results[3]:.2f} {Path(originlock.__file__).parent}")
        return
    trees = ["", *args.src]
    for round_ in range(args.rounds):
        for tree in trees:
            out = subprocess.run(
                [sys.executable, __file__, "--child", tree, "--iterations", str(args.iterations)]
                + (["--product"] if args.product else [])
                + (["--waf25"] if args.waf25 else []),
                check=True,
                stdout=subprocess.PIPE,  # the child's stderr passes through: why a guard stopped it
                text=True,
            ).stdout.split()
            # The default tree is whatever the path gives (the installed package, or PYTHONPATH=src).
            print(f"round {round_ + 1} {tree or out[2]}: min {out[0]} median {out[1]} µs/request")


if __name__ == "__main__":
    main()
