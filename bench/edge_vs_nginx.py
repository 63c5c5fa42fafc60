#!/usr/bin/env python3
"""Benchmark: wrk -> originlock edge -> nginx origin (mTLS, pooled), and in the same run wrk -> nginx
edge (same config) -> the same origin. spec/performance.md §6 protocol.

Primary metric: edge CPU µs per request = Δ(utime+stime) of the edge process (/proc/PID/stat fields 14+15)
÷ requests completed by wrk. Also req/s and p50/p99 from wrk, and origin CPU µs/request (≈30 µs means
pooled; much more means handshakes). Runs alternate between the two edges; medians are reported.

    python bench/edge_vs_nginx.py [--duration 10] [--runs 3] [--connections 50] [--json]
        [--compare-src DIR] [--floor]

Needs nginx and wrk (Debian: apt-get install nginx wrk). Everything listens on 127.0.0.1 ephemeral ports
and is killed at the end. ECDSA P-256 everywhere; the origin requires the client certificate and echoes
$ssl_client_s_dn; both edges verify the origin (strict) and present the same client certificate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def user_sys_ticks(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # utime, stime (fields 14, 15 counting from 1)


def ticks(pid: int) -> int:
    return sum(user_sys_ticks(pid))


def parse_latency(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(url: str, host: str, connections: int, duration: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H", f"Host: {host}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": parse_latency(out, "50"),
        "p99_ms": parse_latency(out, "99"),
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def measure(
    name: str, url: str, host: str, edge_pids: list[int], origin_pids: list[int], connections: int, duration: int
) -> dict[str, float | str]:
    e0, o0 = sum(map(ticks, edge_pids)), sum(map(ticks, origin_pids))
    u0 = sum(user_sys_ticks(pid)[0] for pid in edge_pids)
    result: dict[str, float | str] = dict(wrk(url, host, connections, duration))
    e1, o1 = sum(map(ticks, edge_pids)), sum(map(ticks, origin_pids))
    u1 = sum(user_sys_ticks(pid)[0] for pid in edge_pids)
    n = float(result["requests"]) or 1.0
    result["edge_us_per_req"] = (e1 - e0) / CLK_TCK / n * 1e6
    # The user/kernel split shows what a change can still win: the kernel part (4 loopback syscalls
    # per proxied request) is the same for every edge.
    result["edge_user_us_per_req"] = (u1 - u0) / CLK_TCK / n * 1e6
    result["origin_us_per_req"] = (o1 - o0) / CLK_TCK / n * 1e6
    result["name"] = name
    return result


def _edge_child(directory: str, port: int, origin_port: int, access_log: bool, src: str | None = None) -> None:
    """Runs in a spawned process: the originlock edge serving a.test from the PEM files in ``directory``
    (``src``: import originlock from that source tree instead, for ``--compare-src``)."""
    if src is not None:
        sys.path.insert(0, src)
        import originlock

        # A tree without originlock/__init__.py is a namespace package that silently loses to the
        # installed one: the "baseline" would then be the current code (seen once with /tmp/base).
        if not str(originlock.__file__).startswith(src):
            raise SystemExit(f"--compare-src {src} is not what was imported ({originlock.__file__})")
    import originlock.edge.exchange as exchange

    # Say which code this edge runs (a source tree, or compiled modules): a run must never measure the
    # wrong tree unnoticed. The exchange holds the request path (its callback fast path included).
    print(f"edge ({'baseline' if src else 'originlock'}) runs {exchange.__file__}", file=sys.stderr, flush=True)
    from originlock.edge.config import EdgeConfig
    from originlock.edge.loops import loop_factory
    from originlock.edge.runtime import run_edge
    from originlock.edge.snapshots import MemorySnapshotSource
    from originlock.pipeline.builtin.waf import EdgeWaf
    from originlock.snapshot.model import ClientCert, DeploymentPki, Snapshot, SslMode
    from originlock.testing.pki import make_route

    d = Path(directory)
    meta = json.loads((d / "client.json").read_text())
    client = ClientCert(
        id="zone-a",
        source="zone",
        fingerprint=meta["fingerprint"],
        chain_pem=(d / "zone-a-chain.pem").read_bytes(),
        key_pem=(d / "zone-a.key").read_bytes(),
        not_after=datetime.fromisoformat(meta["not_after"]),
    )
    pki = DeploymentPki(
        edge_ca_cert_pem=(d / "edge-ca.pem").read_bytes(),
        edge_ca_key_pem=(d / "edge-ca.key").read_bytes(),
        origin_ca_cert_pem=(d / "origin-ca.pem").read_bytes(),
    )
    route = make_route("a.test", "127.0.0.1", ssl_mode=SslMode.STRICT, client_cert=client)
    source = MemorySnapshotSource(Snapshot(generation=1, routes={"a.test": route}, pki=pki))
    config = EdgeConfig(
        http=None,
        https=("127.0.0.1", port),
        origin_https_port=origin_port,
        access_log=str(d / "edge-access.log") if access_log else None,
    )
    # As `originlock serve` runs it: the WAF hook is always installed (the zone has no rules, as in
    # nginx's config; with rules, bench/waf_eval.py measures the evaluation itself).
    waf = EdgeWaf(time.monotonic, time.time)
    loop = loop_factory("uvloop")()
    asyncio.set_event_loop(loop)
    profile_to = os.environ.get("ORIGINLOCK_BENCH_PROFILE")
    if profile_to:  # developer aid: cProfile the edge process, dump stats on SIGTERM
        import cProfile
        import signal

        profiler = cProfile.Profile()
        task = loop.create_task(run_edge(config, source, waf=waf))
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        profiler.enable()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        profiler.disable()
        profiler.dump_stats(profile_to)
        return
    loop.run_until_complete(run_edge(config, source, waf=waf))


def _floor_child(directory: str, port: int, origin_port: int) -> None:
    """Runs in a spawned process: the do-nothing relay of ``edge_floor_relay.py`` (``--floor``)."""
    import importlib

    from originlock.edge.loops import loop_factory

    relay = importlib.import_module("edge_floor_relay")  # bench/ is sys.path[0] here too (spawn copies it)
    loop = loop_factory("uvloop")()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(relay.serve_relay(Path(directory), port, origin_port))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--access-log", action="store_true", help="originlock edge writes its access log")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--compare-src",
        metavar="DIR",
        help="also measure the originlock edge imported from DIR (e.g. an export of the previous commit's src/) "
        "in the same run, as 'baseline'",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure a do-nothing uvloop TLS relay (bench/edge_floor_relay.py) as 'floor'",
    )
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin")):
            print(f"{tool} is required", file=sys.stderr)
            return 2
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert nginx is not None

    from originlock.testing.nginx import NginxProcess, free_port, wait_for_port
    from originlock.testing.pki import TestPki, client_cert_from
    from originlock.tls.issue import issue_leaf

    tmp = Path(tempfile.mkdtemp(prefix="originlock-bench-"))
    pki = TestPki()
    w = pki.write
    w(tmp, "edge-ca", pki.edge_ca)
    w(tmp, "origin-ca", pki.origin_ca)
    w(tmp, "origin", pki.server("a.test", "127.0.0.1"))
    w(tmp, "edge", issue_leaf(pki.edge_ca, "a.test", now=pki.now, client=False, server=True, sans=["a.test"]))
    zone = issue_leaf(pki.origin_pull_ca, "zone-a", now=pki.now)
    w(tmp, "zone-a", zone)
    cc = client_cert_from(zone, pki.origin_pull_ca, id="zone-a")
    (tmp / "zone-a-chain.pem").write_bytes(cc.chain_pem)
    (tmp / "client.json").write_text(json.dumps({"fingerprint": cc.fingerprint, "not_after": cc.not_after.isoformat()}))
    (tmp / "pull-ca.pem").write_text(pki.origin_pull_ca.cert_pem)

    origin_port, nginx_edge_port, ol_port, base_port, floor_port = (free_port() for _ in range(5))
    common = "ssl_protocols TLSv1.2 TLSv1.3; keepalive_timeout 75s;"
    origin = NginxProcess(
        nginx,
        tmp / "origin",
        (
            f"{common} ssl_session_cache shared:ORIG:10m;\n"
            f"server {{ listen 127.0.0.1:{origin_port} ssl; ssl_certificate {tmp}/origin.pem; "
            f"ssl_certificate_key {tmp}/origin.key; ssl_client_certificate {tmp}/pull-ca.pem; ssl_verify_client on;\n"
            f'  location / {{ return 200 "ok $ssl_client_s_dn\\n"; }} }}'
        ),
        ports=[origin_port],
    )
    nginx_edge = NginxProcess(
        nginx,
        tmp / "nginx-edge",
        (
            f"{common} ssl_session_cache shared:EDGE:10m;\n"
            f"upstream origin_ka {{ server 127.0.0.1:{origin_port}; keepalive 256; keepalive_requests 1000000; }}\n"
            f"server {{ listen 127.0.0.1:{nginx_edge_port} ssl; ssl_certificate {tmp}/edge.pem; "
            f"ssl_certificate_key {tmp}/edge.key;\n"
            '  proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;\n'
            "  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "  proxy_set_header X-Forwarded-Proto $scheme;\n"
            "  proxy_set_header CF-Connecting-IP $remote_addr; proxy_set_header CF-Ray $request_id;\n"
            "  proxy_ssl_server_name on; proxy_ssl_name $host; proxy_ssl_verify on; proxy_ssl_verify_depth 2;\n"
            f"  proxy_ssl_trusted_certificate {tmp}/origin-ca.pem;\n"
            f"  proxy_ssl_certificate {tmp}/zone-a.pem; proxy_ssl_certificate_key {tmp}/zone-a.key;\n"
            "  location / { proxy_pass https://origin_ka; } }"
        ),
        ports=[nginx_edge_port],
    )
    edge_proc = base_proc = floor_proc = None
    results: list[dict[str, float | str]] = []
    try:
        origin.start()
        nginx_edge.start()
        ctx = multiprocessing.get_context("spawn")
        edge_proc = ctx.Process(target=_edge_child, args=(str(tmp), ol_port, origin_port, args.access_log))
        edge_proc.start()
        wait_for_port(ol_port, timeout=30)
        assert edge_proc.pid is not None
        edges = [("originlock", ol_port, [edge_proc.pid])]
        if args.compare_src:
            src = str(Path(args.compare_src).resolve())
            base_proc = ctx.Process(target=_edge_child, args=(str(tmp), base_port, origin_port, args.access_log, src))
            base_proc.start()
            wait_for_port(base_port, timeout=30)
            assert base_proc.pid is not None
            edges.append(("baseline", base_port, [base_proc.pid]))
        if args.floor:
            floor_proc = ctx.Process(target=_floor_child, args=(str(tmp), floor_port, origin_port))
            floor_proc.start()
            wait_for_port(floor_port, timeout=30)
            assert floor_proc.pid is not None
            edges.append(("floor", floor_port, [floor_proc.pid]))
        origin_pids, nginx_pids = origin.worker_pids(), nginx_edge.worker_pids()
        # Correctness first: both edges must present the client certificate.
        ports = [port for _, port, _ in edges] + [nginx_edge_port]
        for port in ports:
            body = subprocess.run(
                ["curl", "-sk", "-H", "Host: a.test", f"https://127.0.0.1:{port}/"], capture_output=True, text=True
            ).stdout
            assert body.strip() == "ok CN=zone-a", (port, body)
        # Warm both (pools, contexts, JIT-less caches).
        for port in ports:
            wrk(f"https://127.0.0.1:{port}/", "a.test", args.connections, 2)
        for _ in range(args.runs):
            for name, port, pids in [*edges, ("nginx", nginx_edge_port, nginx_pids)]:
                url = f"https://127.0.0.1:{port}/"
                results.append(measure(name, url, "a.test", pids, origin_pids, args.connections, args.duration))
    finally:
        for proc in (edge_proc, base_proc, floor_proc):
            if proc is not None:
                proc.terminate()
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
        nginx_edge.stop()
        origin.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in results if r["name"] == name)

    keys = ("edge_us_per_req", "edge_user_us_per_req", "rps", "p50_ms", "p99_ms", "origin_us_per_req")
    names = sorted({str(r["name"]) for r in results})
    summary = {name: {k: round(med(name, k), 2) for k in keys} for name in names}
    ratios = {k: round(summary["originlock"][k] / summary["nginx"][k], 2) for k in keys}
    report = {
        "connections": args.connections,
        "duration_s": args.duration,
        "runs": results,
        "median": summary,
        "ratio_originlock_over_nginx": ratios,
        "errors": sum(int(r["non2xx"]) for r in results),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in results:
            print(
                f"{r['name']:<11} rps={float(r['rps']):>9.1f} p50={float(r['p50_ms']):.2f}ms "
                f"p99={float(r['p99_ms']):.2f}ms edge={float(r['edge_us_per_req']):.1f}us/req "
                f"(user {float(r['edge_user_us_per_req']):.1f}) "
                f"origin={float(r['origin_us_per_req']):.1f}us/req non2xx={r['non2xx']}"
            )
        print(f"median: {json.dumps(summary)}")
        print(f"ratio originlock/nginx: {json.dumps(ratios)}")
        for name in names:
            if name not in ("originlock", "nginx"):
                other = {k: round(summary[name][k] / summary["nginx"][k], 2) for k in keys}
                print(f"ratio {name}/nginx: {json.dumps(other)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
