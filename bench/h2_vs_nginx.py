#!/usr/bin/env python3
"""HTTP/2 visitors: h2load through ``originlock serve`` against h2load through nginx (``listen ... ssl http2``),
in the same run, both proxying to the same nginx origin that requires the zone's client certificate.

    python bench/h2_vs_nginx.py [--requests 10000] [--runs 3] [--venv DIR] [--codecs] [--nginx-only] [--json]
    python bench/h2_vs_nginx.py --floor [--runs 3]

Load: ``h2load -c 10 -m 10 -n N`` (10 connections, 10 concurrent streams each), SNI and ``:authority``
``a.bench.test``. Reported per edge: CPU µs per request (utime+stime of the edge processes from /proc,
divided by the requests that succeeded), req/s, p50/p99 from h2load's per-request log; medians of the runs
and originlock/nginx ratios (the issue's target: CPU per request at most twice nginx's).

Before measuring an edge, the script checks that it negotiates ALPN ``h2``; one that does not (originlock
before its h2 protocol is wired in) is reported as such and not measured. ``--nginx-only`` skips the product
(no venv install): nginx then trusts an origin certificate from a throwaway CA instead of the product's
Origin CA, which shows the script and the nginx side work on their own.

The product is set up as ``bench/product_vs_nginx.py`` sets it up (its ``install_product`` and ``configure``
are reused: a ``pip install .`` venv, zones and the client certificate through the v4 API). nginx's
``keepalive_requests`` is 1000000 (NginxProcess); originlock's h2 connections send GOAWAY after
``H2Limits.max_requests`` (1000) requests, which ``-n`` up to 1000 times ``-c`` stays within. The box is shared:
compare ratios from the same run only. Needs nginx, h2load (Debian nghttp2-client) and curl.

``--codecs`` runs a second ``originlock serve`` from the same venv and a copy of the first one's data
directory (same zones, certificates and CAs) with ``ORIGINLOCK_H2_CODEC=h2``: the pure-Python codec
(``originlock-h2``) measured in the same run, interleaved, next to libnghttp2's (``originlock``) and nginx.
``--cffi`` likewise runs one with ``ORIGINLOCK_H2_SHIM=0`` (``originlock-cffi``): libnghttp2 through cffi, the
compiled shim's fallback. Each product's banner line naming its codec is printed, so a run says what it ran.

``--floor`` measures, in process, what each codec path alone costs per request (the sans-IO layer: the
compiled shim, cffi, ``h2``): a lower bound for the edge's CPU per request over h2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from edge_vs_nginx import CLK_TCK, ticks  # noqa: E402
from product_vs_nginx import V4, configure, install_product  # noqa: E402

from originlock.proto.http2_events import H2Limits  # noqa: E402
from originlock.testing.nginx import NginxProcess, free_port, wait_for_port  # noqa: E402
from originlock.testing.pki import TestPki  # noqa: E402
from originlock.tls.issue import issue_leaf  # noqa: E402

HOST = "a.bench.test"
HOSTS = ("a.bench.test", "b.bench.test", "c.bench.test", "a.waf.test")  # what configure() sets up
CLIENTS, STREAMS = 10, 10
CODEC_ENV = ("ORIGINLOCK_H2_CODEC", "ORIGINLOCK_H2_SHIM")
#: The products measured besides ``originlock`` (the default codec): name, flag, environment.
VARIANTS = (
    ("originlock-cffi", "cffi", {"ORIGINLOCK_H2_SHIM": "0"}),
    ("originlock-h2", "codecs", {"ORIGINLOCK_H2_CODEC": "h2"}),
)


def negotiated_alpn(port: int) -> str | None:
    """The protocol the edge at ``port`` selects when offered ``h2`` and ``http/1.1``."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        return tls.selected_alpn_protocol()


def h2load(port: int, requests: int, log: Path) -> dict[str, Any]:
    """One h2load run; p50/p99 from its per-request log (h2load prints no percentiles)."""
    args = ["h2load", f"-c{CLIENTS}", f"-m{STREAMS}", f"-n{requests}", f"--connect-to=127.0.0.1:{port}"]
    out = subprocess.run(
        [*args, f"--log-file={log}", f"https://{HOST}/"], capture_output=True, text=True, check=True
    ).stdout
    done = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", out)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    status = re.search(r"status codes: (\d+) 2xx", out)
    assert done and rps and status, out
    latencies = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines() if line.count("\t") >= 2)
    log.unlink()

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000 if latencies else float("nan")

    return {
        "requests": int(done.group(1)),
        "succeeded": int(done.group(2)),
        "failed": int(done.group(3)),
        "ok_2xx": int(status.group(1)),
        "rps": float(rps.group(1)),
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    }


def measure(edge: str, port: int, pids: list[int], requests: int, tmp: Path) -> dict[str, Any]:
    before = sum(map(ticks, pids))
    result = h2load(port, requests, tmp / f"h2load-{edge}.log")
    used = sum(map(ticks, pids)) - before
    result.update(edge=edge, edge_us_per_req=used / CLK_TCK / (result["succeeded"] or 1) * 1e6)
    return result


def nginx_edge_block(tmp: Path, port: int, origin_port: int, trusted: Path) -> str:
    """nginx as the edge: h2 to visitors, pooled mTLS to the origin (the product benchmark's proxy settings)."""
    return (
        "ssl_protocols TLSv1.2 TLSv1.3; keepalive_timeout 75s; ssl_session_cache shared:EDGE:10m;\n"
        f"upstream pooled {{ server 127.0.0.1:{origin_port}; keepalive 256; keepalive_requests 1000000; }}\n"
        f"server {{ listen 127.0.0.1:{port} ssl http2; server_name {HOST};\n"
        f"  ssl_certificate {tmp}/edge.pem; ssl_certificate_key {tmp}/edge.key;\n"
        '  proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;\n'
        "  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme;\n"
        "  proxy_set_header CF-Connecting-IP $remote_addr; proxy_set_header CF-Ray $request_id;\n"
        "  proxy_ssl_server_name on; proxy_ssl_name $host; proxy_ssl_verify on; proxy_ssl_verify_depth 2;\n"
        f"  proxy_ssl_trusted_certificate {trusted};\n"
        f"  proxy_ssl_certificate {tmp}/zone-a.pem; proxy_ssl_certificate_key {tmp}/zone-a.key;\n"
        "  location / { proxy_pass https://pooled; } }\n"
    )


def origin_block(tmp: Path, port: int) -> str:
    return (
        "ssl_protocols TLSv1.2 TLSv1.3;\n"
        f"server {{ listen 127.0.0.1:{port} ssl; keepalive_timeout 75s; ssl_session_cache shared:P:10m;\n"
        f"  ssl_certificate {tmp}/origin.pem; ssl_certificate_key {tmp}/origin.key;\n"
        f"  ssl_client_certificate {tmp}/pull-ca.pem; ssl_verify_client on;\n"
        '  location / { return 200 "ok $ssl_client_s_dn\\n"; } }\n'
    )


def start_product(
    exe: Path, tmp: Path, https_port: int, origin_port: int, data: str = "data", codec: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``originlock serve`` with one worker (``codec``: environment that picks its HTTP/2 codec); returns the
    process and its API base URL once healthy."""
    api_port = free_port()
    log = (tmp / f"serve-{data}.log").open("w")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", *CODEC_ENV)}
    env.update(codec or {})
    args = ["serve", "--data-dir", str(tmp / data), "--api", f"127.0.0.1:{api_port}", "--http", "off"]
    args += ["--https", f"127.0.0.1:{https_port}", "--origin-https-port", str(origin_port), "--workers", "1"]
    serve = subprocess.Popen([str(exe), *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    base = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return serve, base
        except httpx.HTTPError:
            pass
        if serve.poll() is not None or time.monotonic() > deadline:
            serve.kill()
            raise RuntimeError((tmp / f"serve-{data}.log").read_text()[-3000:])
        time.sleep(0.2)


def h2_floor(requests: int = 20000, codec_name: str = "shim") -> float:
    """CPU µs per request of ``proto/http2.py`` alone, in process (no TLS, no sockets, no pipeline): a GET
    read ten to a read as h2load -m10 sends them, answered with a 200 and a small body. The least any h2
    path through the edge can cost; the rest of the edge's CPU comes on top."""
    import h2.config
    import h2.connection
    import h2.settings

    from originlock.proto.http2 import H2Limits, H2Server, NgH2Server, RequestStarted

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 30})
    client.increment_flow_control_window(1 << 30)
    fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", HOST.encode()), (b":path", b"/")]
    fields += [(b"user-agent", b"h2load nghttp2/1.52.0"), (b"accept", b"*/*")]
    reads = []
    for n in range(requests):
        client.send_headers(1 + 2 * n, fields, end_stream=True)
        client.streams.pop(1 + 2 * n)  # the client's own bookkeeping is not measured
        if n % STREAMS == STREAMS - 1:
            reads.append(client.data_to_send())
    head = [(b"Server", b"originlock"), (b"Content-Type", b"text/plain"), (b"Content-Length", b"13")]
    limits = H2Limits(max_requests=requests)
    server = H2Server(limits) if codec_name == "h2" else NgH2Server(limits, session=codec_name)
    server.initiate()
    start = time.process_time()
    for data in reads:
        for event in server.feed(data):
            if isinstance(event, RequestStarted):
                server.send_response(event.stream_id, 200, head, end_stream=False)
                server.send_data(event.stream_id, b"ok CN=zone-a\n", end_stream=True)
        server.data_to_send()
    return (time.process_time() - start) / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--venv", type=Path, help="reuse this venv (created with `pip install .` if missing)")
    parser.add_argument("--nginx-only", action="store_true", help="measure nginx alone (no product install)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--floor", action="store_true", help="only the in-process cost of each codec")
    parser.add_argument("--codecs", action="store_true", help="also measure the product with the h2 codec")
    parser.add_argument("--cffi", action="store_true", help="also measure the product without the compiled shim")
    args = parser.parse_args()
    most = H2Limits().max_requests * CLIENTS
    if not args.floor and args.requests > most:
        # More would be refused after each connection's GOAWAY (h2load does not reconnect): the CPU per
        # request stays right (divided by the requests that succeeded) but the run is not the one asked for.
        parser.error(f"--requests at most {most}: originlock's h2 connections close after {most // CLIENTS}")
    if args.floor:
        from originlock.proto import nghttp2_lib

        for codec_name in ("shim", "cffi", "h2"):
            if codec_name == "shim" and nghttp2_lib.load_shim() is None:
                print(f"shim: not built here ({nghttp2_lib.shim_unavailable_reason()})")
                continue
            floors = [round(h2_floor(codec_name=codec_name), 1) for _ in range(args.runs)]
            print(f"{codec_name} codec alone: {statistics.median(floors):.1f} us/request (of {args.runs}: {floors})")
        return 0
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None or shutil.which("h2load") is None:
        print("nginx and h2load (Debian nghttp2-client) are required", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="originlock-h2-bench-"))
    pki = TestPki()
    zone_leaf = issue_leaf(pki.origin_pull_ca, "zone-a", now=pki.now)
    pki.write(tmp, "zone-a", zone_leaf)
    (tmp / "pull-ca.pem").write_text(pki.origin_pull_ca.cert_pem)
    pki.write(tmp, "edge", issue_leaf(pki.edge_ca, HOST, now=pki.now, client=False, server=True, sans=list(HOSTS)))
    origin_port, nginx_port, ol_port = free_port(), free_port(), free_port()

    serve: subprocess.Popen[bytes] | None = None
    variants: list[tuple[str, int, subprocess.Popen[bytes]]] = []
    origin = nginx_edge = None
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    try:
        edges: list[tuple[str, int, list[int]]] = []
        if args.nginx_only:
            pki.write(tmp, "origin", pki.server(HOST))
            (tmp / "origin-ca.pem").write_text(pki.origin_ca.cert_pem)
        else:
            exe = install_product(args.venv or tmp / "venv")
            serve, base = start_product(exe, tmp, ol_port, origin_port)
            token = (tmp / "data" / "admin-token").read_text().strip()
            api = httpx.Client(base_url=base + V4, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            ports = {"pooled": origin_port, "resume": origin_port, "full": origin_port}
            issued = configure(api, ports, (zone_leaf.cert_pem, zone_leaf.key_pem.decode()))
            (tmp / "origin.pem").write_text(issued["cert"])
            (tmp / "origin.key").write_text(issued["key"])
            (tmp / "origin-ca.pem").write_text(httpx.get(f"{base}/ca/origin.pem").text)
            for name, flag, env in VARIANTS:
                if getattr(args, flag):
                    shutil.copytree(tmp / "data", tmp / f"data-{name}")
                    port = free_port()
                    product, _ = start_product(exe, tmp, port, origin_port, data=f"data-{name}", codec=env)
                    variants.append((name, port, product))
        origin = NginxProcess(nginx, tmp / "origin", origin_block(tmp, origin_port), ports=[origin_port]).start()
        edge_conf = nginx_edge_block(tmp, nginx_port, origin_port, tmp / "origin-ca.pem")
        nginx_edge = NginxProcess(nginx, tmp / "nginx-edge", edge_conf, ports=[nginx_port]).start()
        edges.append(("nginx", nginx_port, nginx_edge.worker_pids()))
        if serve is not None:
            wait_for_port(ol_port, timeout=30)
            alpn = negotiated_alpn(ol_port)
            if alpn == "h2":
                edges.insert(0, ("originlock", ol_port, [serve.pid]))
                for at, (name, port, product) in enumerate(variants, start=1):
                    wait_for_port(port, timeout=30)
                    edges.insert(at, (name, port, [product.pid]))
                for name, data in (("originlock", "data"), *((v[0], f"data-{v[0]}") for v in variants)):
                    banner = (tmp / f"serve-{data}.log").read_text()
                    codec_line = next((line for line in banner.splitlines() if "HTTP/2 codec" in line), "?")
                    print(f"# {name}: {codec_line.strip()}", file=sys.stderr)
            else:
                notes.append(f"originlock: ALPN h2 not negotiated (selected {alpn!r}): not measured")
        for edge, port, _ in edges:
            assert negotiated_alpn(port) == "h2", edge
            out = subprocess.run(
                ["curl", "-sk", "--http2", "--resolve", f"{HOST}:{port}:127.0.0.1", f"https://{HOST}:{port}/"],
                capture_output=True,
                text=True,
            ).stdout
            assert out.strip() == "ok CN=zone-a", (edge, out)
            h2load(port, 1000, tmp / "warmup.log")
        for note in notes:
            print(f"# {note}", file=sys.stderr)
        for run in range(args.runs):
            for edge, port, pids in edges if run % 2 == 0 else edges[::-1]:
                result = measure(edge, port, pids, args.requests, tmp)
                results.append(result)
                if not args.json:
                    print(
                        f"run {run + 1} {edge:<13} rps={result['rps']:>8.1f} p50={result['p50_ms']:.2f}ms "
                        f"p99={result['p99_ms']:.2f}ms cpu={result['edge_us_per_req']:.1f}us/req "
                        f"succeeded={result['succeeded']}/{result['requests']} 2xx={result['ok_2xx']}",
                        flush=True,
                    )
    finally:
        for product in (serve, *(v[2] for v in variants)):
            if product is not None:
                product.terminate()
                try:
                    product.wait(30)
                except subprocess.TimeoutExpired:
                    product.kill()
        for proc in (nginx_edge, origin):
            if proc is not None:
                proc.stop()
        for _ in range(10):  # nginx's workers may still be writing as they exit; a --venv lives elsewhere
            shutil.rmtree(tmp, ignore_errors=True)
            if not tmp.exists():
                break
            time.sleep(0.5)

    keys = ("edge_us_per_req", "rps", "p50_ms", "p99_ms")
    measured = sorted({r["edge"] for r in results})
    median = {
        e: {k: round(statistics.median(r[k] for r in results if r["edge"] == e), 2) for k in keys} for e in measured
    }
    for edge in ("originlock", *(v[0] for v in VARIANTS)):
        if edge in median and "nginx" in median:
            name = "ratio" if edge == "originlock" else "ratio-" + edge.removeprefix("originlock-")
            median[name] = {k: round(median[edge][k] / median["nginx"][k], 2) for k in keys}
    load = os.getloadavg()
    report = {
        "requests": args.requests,
        "loadavg": [round(x, 2) for x in load],
        "clients": CLIENTS,
        "streams": STREAMS,
        "median": median,
        "notes": notes,
    }
    if args.json:
        print(json.dumps({**report, "runs": results}, indent=2))
        return 0
    print(
        f"\nmedians of {args.runs} runs, h2load -c {CLIENTS} -m {STREAMS} -n {args.requests}; "
        f"load average at the end {load}"
    )
    for edge, values in median.items():
        print(
            f"{edge:<13} cpu={values['edge_us_per_req']:.2f}{'x' if edge.startswith('ratio') else 'us/req'} "
            f"rps={values['rps']:.1f} p50={values['p50_ms']:.2f}ms p99={values['p99_ms']:.2f}ms"
        )
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
