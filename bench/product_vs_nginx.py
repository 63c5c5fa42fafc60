#!/usr/bin/env python3
"""The product against nginx, measured as a user would run it: ``pip install .`` into a fresh venv,
``originlock serve`` from that venv, configured through the v4 API, access logs to files on both edges,
the same nginx origin requiring the client certificate, both edges measured in the same run.

Shapes (each a hostname; ``wrk -t1``, CPU per request of the edge process from /proc):

- ``pooled``:        keep-alive visitor connections, pooled mTLS origin connections (``-c50``);
- ``new-visitor``:   ``Connection: close`` on every request: a new visitor TLS connection per request (wrk
  resumes TLS sessions, as browsers do), pooled origin connections (``-c20``);
- ``new-origin-resume``: the origin closes after each response (``keepalive_timeout 0``) and offers session
  tickets and a session cache: a new mTLS origin connection per request, resumption possible (``-c20``);
- ``new-origin-full``:   the same origin without tickets or cache: a full mTLS handshake per request;
- ``waf25``:         pooled, with 25 custom rules (none matching) in the zone (nginx: 25 ``if`` checks).

nginx pulls from the origin over TLS 1.2 or 1.3 (``proxy_ssl_protocols TLSv1.2 TLSv1.3``, current nginx's
default), as originlock does: like is compared with like. nginx 1.22's own default pulls over TLS 1.2 only,
whose resumption skips the key exchange a TLS 1.3 one makes; the new-origin shapes are also measured against
that (``nginx-tls12``, a second listener of the same nginx), as a secondary line (``--no-tls12-line``: skip).

    python bench/product_vs_nginx.py [--duration 5] [--runs 3] [--venv DIR] [--shapes pooled,waf25] [--json]

Also printed: each edge's idle CPU (ms per second with no request, ``--idle`` seconds), and what that is
per request at the measured rates: ``originlock serve`` polls its store and runs its jobs in the serving
process, a cost every per-request figure includes and nginx does not have.

``--venv DIR`` reuses (or creates once) a venv holding ``pip install .`` of this checkout; without it a
temporary one is built and removed. The box is shared and noisy: take medians of several runs, compare
ratios from the same run only. Needs nginx, wrk and curl. Report: CPU µs/request (edge process,
utime+stime), req/s, p50/p99, origin CPU µs/request, and originlock/nginx ratios per shape.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import proc_counts  # noqa: E402
from edge_vs_nginx import CLK_TCK, parse_latency, ticks, user_sys_ticks  # noqa: E402
from product_callgrind import start_counting, stop_counting, under_callgrind  # noqa: E402
from product_report import count_lines, origin_reuse, print_idle, print_summary, summarize  # noqa: E402

from originlock.testing.nginx import NginxProcess, free_port, wait_for_port  # noqa: E402
from originlock.testing.pki import TestPki  # noqa: E402
from originlock.tls.issue import issue_leaf  # noqa: E402

V4 = "/client/v4"
#: shape -> (hostname, wrk connections, extra wrk headers)
SHAPES: dict[str, tuple[str, int, list[str]]] = {
    "pooled": ("a.bench.test", 50, []),
    "new-visitor": ("a.bench.test", 20, ["Connection: close"]),
    "new-origin-resume": ("b.bench.test", 20, []),
    "new-origin-full": ("c.bench.test", 20, []),
    "waf25": ("a.waf.test", 50, []),
}
HOSTS = ("a.bench.test", "b.bench.test", "c.bench.test", "a.waf.test")
#: Typical custom-rule shapes (paths, query, headers, methods, addresses, user agents); none matches the
#: benchmark's GET /, so every rule is evaluated on every request.
WAF_RULES = [
    *(f'http.request.uri.path eq "/admin{i}"' for i in range(5)),
    *(f'starts_with(http.request.uri.path, "/wp-{i}")' for i in range(5)),
    *(f'http.request.uri.query contains "union select {i}"' for i in range(5)),
    *(f'http.user_agent contains "scanner{i}"' for i in range(5)),
    'http.request.method eq "TRACE"',
    "ip.src in {192.0.2.0/24 198.51.100.7}",
    'http.request.uri.path matches "^/\\\\.git"',
    'http.host eq "blocked.waf.test"',
    'http.referer contains "spam.example"',
]
NGINX_WAF = [
    *(f'if ($uri = "/admin{i}") {{ return 403; }}' for i in range(5)),
    *(f'if ($uri ~ "^/wp-{i}") {{ return 403; }}' for i in range(5)),
    *(f'if ($args ~ "union select {i}") {{ return 403; }}' for i in range(5)),
    *(f'if ($http_user_agent ~ "scanner{i}") {{ return 403; }}' for i in range(5)),
    "if ($request_method = TRACE) { return 403; }",
    "if ($blocked_ip) { return 403; }",
    'if ($uri ~ "^/\\.git") { return 403; }',
    'if ($host = "blocked.waf.test") { return 403; }',
    'if ($http_referer ~ "spam\\.example") { return 403; }',
]


def install_product(venv: Path) -> Path:
    """``pip install .`` of this checkout into ``venv`` (created when missing): what a user runs."""
    exe = venv / "bin" / "originlock"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ORIGINLOCK_PURE")}
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True, env=env)
    return exe


def wrk(url: str, host: str, connections: int, duration: int, headers: list[str]) -> dict[str, float]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H", f"Host: {host}"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": parse_latency(out, "50"),
        "p99_ms": parse_latency(out, "99"),
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",  # type: ignore[dict-item]
    }


def measure(
    edge: str,
    shape: str,
    port: int,
    edge_pids: list[int],
    origin_pids: list[int],
    duration: int,
    callgrind: Path | None = None,
) -> dict[str, Any]:
    """One wrk run against one edge. With ``callgrind`` (the edge runs under it), also its instructions."""
    host, connections, headers = SHAPES[shape]
    if callgrind is not None:
        start_counting(edge_pids)
    e0, o0 = sum(map(ticks, edge_pids)), sum(map(ticks, origin_pids))
    u0 = sum(user_sys_ticks(pid)[0] for pid in edge_pids)
    p0 = proc_counts.read(edge_pids)
    result: dict[str, Any] = dict(wrk(f"https://127.0.0.1:{port}/", host, connections, duration, headers))
    e1, o1 = sum(map(ticks, edge_pids)), sum(map(ticks, origin_pids))
    u1 = sum(user_sys_ticks(pid)[0] for pid in edge_pids)
    seen = proc_counts.read(edge_pids) - p0
    n = float(result["requests"]) or 1.0
    if callgrind is not None:
        result["edge_instructions_per_req"] = stop_counting(edge_pids, callgrind) / n
    result.update(
        edge=edge,
        shape=shape,
        edge_us_per_req=(e1 - e0) / CLK_TCK / n * 1e6,
        edge_user_us_per_req=(u1 - u0) / CLK_TCK / n * 1e6,
        origin_us_per_req=(o1 - o0) / CLK_TCK / n * 1e6,
        faults_per_req=seen.minor_faults / n,
        switches_per_req=(seen.voluntary_switches + seen.involuntary_switches) / n,
        involuntary_per_req=seen.involuntary_switches / n,
    )
    return result


def _csr(host: str) -> tuple[str, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return csr.public_bytes(serialization.Encoding.PEM).decode(), pem


def configure(api: httpx.Client, ports: dict[str, int], zone_cert: tuple[str, str]) -> dict[str, str]:
    """Zones, proxied records, Full (strict), the zone's client certificate, Origin Rules for the
    no-keep-alive origins and 25 WAF rules: all through the v4 API. Returns the Origin CA certificate and key."""

    def ok(r: httpx.Response) -> dict[str, Any]:
        assert r.status_code < 300 and r.json()["success"], r.text
        return r.json()  # type: ignore[no-any-return]

    csr, key = _csr("a.bench.test")
    issued = ok(
        api.post(
            "/certificates",
            json={"csr": csr, "hostnames": list(HOSTS), "request_type": "origin-ecc", "requested_validity": 7},
        )
    )["result"]["certificate"]
    for zone_name, records in (("bench.test", ("a", "b", "c")), ("waf.test", ("a",))):
        zone = ok(api.post("/zones", json={"name": zone_name}))["result"]["id"]
        for record in records:
            ok(
                api.post(
                    f"/zones/{zone}/dns_records",
                    json={"type": "A", "name": record, "content": "127.0.0.1", "proxied": True},
                )
            )
        ok(api.patch(f"/zones/{zone}/settings/ssl", json={"value": "strict"}))
        ok(
            api.post(
                f"/zones/{zone}/origin_tls_client_auth", json={"certificate": zone_cert[0], "private_key": zone_cert[1]}
            )
        )
        ok(api.put(f"/zones/{zone}/origin_tls_client_auth/settings", json={"enabled": True}))
        if zone_name == "bench.test":
            rules = [
                {
                    "expression": f'http.host eq "{host}"',
                    "action": "route",
                    "action_parameters": {"origin": {"port": ports[kind]}},
                }
                for host, kind in (("b.bench.test", "resume"), ("c.bench.test", "full"))
            ]
            ok(api.put(f"/zones/{zone}/rulesets/phases/http_request_origin/entrypoint", json={"rules": rules}))
        else:
            rules = [{"expression": e, "action": "block", "description": f"r{i}"} for i, e in enumerate(WAF_RULES)]
            ok(api.put(f"/zones/{zone}/rulesets/phases/http_request_firewall_custom/entrypoint", json={"rules": rules}))
    return {"cert": issued, "key": key.decode()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--venv", type=Path, help="reuse this venv (created with `pip install .` if missing)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated subset of {','.join(SHAPES)}")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure the do-nothing uvloop relay (bench/edge_floor_relay.py) in every shape but waf25",
    )
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measured per edge")
    parser.add_argument(
        "--no-tls12-line", action="store_true", help="skip the new-origin shapes against nginx pulling over TLS 1.2"
    )
    parser.add_argument(
        "--callgrind",
        type=Path,
        metavar="DIR",
        help="run serve and the floor relays under callgrind (dumps in DIR) and report their instructions per"
        " request in the measured runs; nginx is measured as usual (see bench/product_callgrind.py)",
    )
    args = parser.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    #: Seconds to wait for an edge to listen: interpreter start-up under valgrind takes minutes.
    start_timeout = 900 if args.callgrind else 30
    if args.callgrind:
        args.callgrind.mkdir(parents=True, exist_ok=True)
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None or shutil.which("wrk") is None:
        print("nginx and wrk are required", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="originlock-product-bench-"))
    venv = args.venv or tmp / "venv"
    t0 = time.monotonic()
    exe = install_product(venv)
    print(f"# product: {exe} (install {time.monotonic() - t0:.0f} s)", file=sys.stderr)

    pki = TestPki()
    zone_leaf = issue_leaf(pki.origin_pull_ca, "zone-a", now=pki.now)
    zone_cert = (zone_leaf.cert_pem, zone_leaf.key_pem.decode())
    (tmp / "zone-a.pem").write_text(zone_leaf.cert_pem)
    (tmp / "zone-a.key").write_bytes(zone_leaf.key_pem)
    (tmp / "pull-ca.pem").write_text(pki.origin_pull_ca.cert_pem)
    edge_leaf = issue_leaf(pki.edge_ca, "a.bench.test", now=pki.now, client=False, server=True, sans=list(HOSTS))
    pki.write(tmp, "edge", edge_leaf)

    api_port, ol_port, nginx_port, nginx12_port = free_port(), free_port(), free_port(), free_port()
    #: The floor relay per shape: its origin (an origin_ports key) and mode (edge_floor_relay.serve_relay).
    floor_modes = {
        "pooled": ("pooled", "keep"),
        "new-visitor": ("pooled", "close"),
        "new-origin-resume": ("resume", "dial"),
        "new-origin-full": ("full", "dial"),
    }
    floor_ports = {shape: free_port() for shape in floor_modes}
    origin_ports = {"pooled": free_port(), "resume": free_port(), "full": free_port()}
    data = tmp / "data"
    serve_log = (tmp / "serve.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    serve_argv = [
        str(exe.parent / "python"),
        "-m",
        "originlock",
        "serve",
        "--data-dir",
        str(data),
        "--api",
        f"127.0.0.1:{api_port}",
        "--http",
        "off",
        "--https",
        f"127.0.0.1:{ol_port}",
        "--origin-https-port",
        str(origin_ports["pooled"]),
        "--workers",
        "1",
        "--access-log",
        str(tmp / "originlock-access.log"),
    ]
    if args.callgrind:
        serve_argv = under_callgrind(serve_argv, args.callgrind, "serve")
    serve = subprocess.Popen(serve_argv, stdout=serve_log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    origin = nginx_edge = None
    floors: dict[str, subprocess.Popen[bytes]] = {}
    results: list[dict[str, Any]] = []
    try:
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + max(60, start_timeout)
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert serve.poll() is None and time.monotonic() < deadline, (tmp / "serve.log").read_text()
            time.sleep(0.2)
        banner = (tmp / "serve.log").read_text()
        print("# " + "\n# ".join(line for line in banner.splitlines() if line.startswith("edge ")), file=sys.stderr)
        token = (data / "admin-token").read_text().strip()
        api = httpx.Client(base_url=base + V4, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        origin_cert = configure(api, origin_ports, zone_cert)
        (tmp / "origin.pem").write_text(origin_cert["cert"])
        (tmp / "origin.key").write_text(origin_cert["key"])
        (tmp / "origin-ca.pem").write_text(httpx.get(f"{base}/ca/origin.pem").text)

        origin_log = f"access_log {tmp}/origin-access.log reuse buffer=64k flush=1s;"
        tls = (
            f"ssl_certificate {tmp}/origin.pem; ssl_certificate_key {tmp}/origin.key; "
            f"ssl_client_certificate {tmp}/pull-ca.pem; ssl_verify_client on; {origin_log}"
        )
        body = 'return 200 "ok $ssl_client_s_dn\\n";'
        origin = NginxProcess(
            nginx,
            tmp / "origin",
            "ssl_protocols TLSv1.2 TLSv1.3;\n"
            "log_format reuse '$server_port $ssl_session_reused $ssl_protocol';\n"
            f"server {{ listen 127.0.0.1:{origin_ports['pooled']} ssl; {tls} keepalive_timeout 75s;\n"
            f"  ssl_session_cache shared:P:10m; location / {{ {body} }} }}\n"
            f"server {{ listen 127.0.0.1:{origin_ports['resume']} ssl; {tls} keepalive_timeout 0;\n"
            f"  ssl_session_cache shared:R:10m; ssl_session_tickets on; location / {{ {body} }} }}\n"
            f"server {{ listen 127.0.0.1:{origin_ports['full']} ssl; {tls} keepalive_timeout 0;\n"
            f"  ssl_session_cache off; ssl_session_tickets off; location / {{ {body} }} }}",
            ports=list(origin_ports.values()),
        )
        proxy = (
            f"ssl_certificate {tmp}/edge.pem; ssl_certificate_key {tmp}/edge.key;\n"
            f"  access_log {tmp}/nginx-access.log edge buffer=64k flush=1s;\n"
            '  proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;\n'
            "  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "  proxy_set_header X-Forwarded-Proto $scheme;\n"
            "  proxy_set_header CF-Connecting-IP $remote_addr; proxy_set_header CF-Ray $request_id;\n"
            "  proxy_ssl_server_name on; proxy_ssl_name $host; proxy_ssl_verify on; proxy_ssl_verify_depth 2;\n"
            f"  proxy_ssl_trusted_certificate {tmp}/origin-ca.pem;\n"
            f"  proxy_ssl_certificate {tmp}/zone-a.pem; proxy_ssl_certificate_key {tmp}/zone-a.key;\n"
        )
        waf = "\n    ".join(NGINX_WAF)

        def server(host: str, upstream: str, rules: str = "", port: int = nginx_port, pull: str = "") -> str:
            return (
                f"server {{ listen 127.0.0.1:{port} ssl; server_name {host};\n  {proxy}"
                f"  proxy_ssl_protocols {pull or 'TLSv1.2 TLSv1.3'};\n"
                f"  location / {{ {rules}\n    proxy_pass https://{upstream}; }} }}\n"
            )

        # nginx 1.22's default proxy_ssl_protocols: the origin pull is TLS 1.2.
        tls12 = "TLSv1 TLSv1.1 TLSv1.2"

        keepalive = "keepalive 256; keepalive_requests 1000000;"
        nginx_edge = NginxProcess(
            nginx,
            tmp / "nginx-edge",
            "ssl_protocols TLSv1.2 TLSv1.3; keepalive_timeout 75s; ssl_session_cache shared:EDGE:10m;\n"
            # One JSON line per request with originlock's main fields, buffered as originlock's is.
            'log_format edge escape=json \'{"time":$msec,"ray_id":"$request_id","client_ip":"$remote_addr",'
            '"scheme":"$scheme","host":"$host","method":"$request_method","path":"$request_uri",'
            '"status":$status,"bytes":$body_bytes_sent,"duration_ms":$request_time,'
            '"origin":"$upstream_addr","origin_connect":"$upstream_connect_time"}\';\n'
            "geo $blocked_ip { default 0; 192.0.2.0/24 1; 198.51.100.7 1; }\n"
            f"upstream pooled {{ server 127.0.0.1:{origin_ports['pooled']}; {keepalive} }}\n"
            f"upstream resume {{ server 127.0.0.1:{origin_ports['resume']}; }}\n"
            f"upstream full {{ server 127.0.0.1:{origin_ports['full']}; }}\n"
            + server("a.bench.test", "pooled")
            + server("b.bench.test", "resume")
            + server("c.bench.test", "full")
            + server("a.waf.test", "pooled", waf)
            + server("b.bench.test", "resume", port=nginx12_port, pull=tls12)
            + server("c.bench.test", "full", port=nginx12_port, pull=tls12),
            ports=[nginx_port, nginx12_port],
        )
        origin.start()
        nginx_edge.start()
        wait_for_port(ol_port, timeout=start_timeout)
        floor_shapes = set(floor_modes) & set(shapes) if args.floor else set()
        for shape in floor_shapes:
            # The relay in its own process on uvloop, pulling from the shape's origin as originlock does
            # (pooled, or a dial per request where the shape makes one).
            origin_kind, mode = floor_modes[shape]
            floor_argv = [
                sys.executable,
                "-c",
                "import asyncio, sys, uvloop; from pathlib import Path; sys.path[:0] = sys.argv[1:3];"
                "import edge_floor_relay as r; uvloop.run(r.serve_relay(Path(sys.argv[3]), int(sys.argv[4]),"
                " int(sys.argv[5]), chain='zone-a.pem', server_name='a.bench.test',"
                " close_visitors=sys.argv[6] == 'close', dial_origins=sys.argv[6] == 'dial'))",
                str(Path(__file__).resolve().parent),
                str(ROOT / "src"),
                str(tmp),
                str(floor_ports[shape]),
                str(origin_ports[origin_kind]),
                mode,
            ]
            if args.callgrind:
                floor_argv = under_callgrind(floor_argv, args.callgrind, f"floor-{shape}")
            floors[shape] = subprocess.Popen(floor_argv, env=env)
            wait_for_port(floor_ports[shape], timeout=start_timeout)
        serve_pids = [serve.pid]
        origin_pids, nginx_pids = origin.worker_pids(), nginx_edge.worker_pids()
        for port, hosts in ((ol_port, HOSTS), (nginx_port, HOSTS), (nginx12_port, HOSTS[1:3])):
            for host in hosts:
                out = subprocess.run(
                    ["curl", "-sk", "--resolve", f"{host}:{port}:127.0.0.1", f"https://{host}:{port}/"],
                    capture_output=True,
                    text=True,
                ).stdout
                assert out.strip() == "ok CN=zone-a", (port, host, out, (tmp / "serve.log").read_text()[-2000:])
        tls12_shapes = set() if args.no_tls12_line else {"new-origin-resume", "new-origin-full"} & set(shapes)
        for shape in shapes:  # warm-up: pools, contexts, session caches
            for port in (ol_port, nginx_port, nginx12_port) if shape in tls12_shapes else (ol_port, nginx_port):
                wrk(f"https://127.0.0.1:{port}/", SHAPES[shape][0], SHAPES[shape][1], 1, SHAPES[shape][2])
        # What each edge spends with no request at all: originlock serve's store polling and jobs run in the
        # serving process, so this share is in every per-request figure above (idle ms/s / req/s).
        idle = {"originlock": idle_cpu(serve_pids, args.idle), "nginx": idle_cpu(nginx_pids, args.idle)}
        for run in range(args.runs):
            for shape in shapes:
                order = [("originlock", ol_port, serve_pids), ("nginx", nginx_port, nginx_pids)]
                if shape in tls12_shapes:
                    order.append(("nginx-tls12", nginx12_port, nginx_pids))
                if shape in floors:
                    order.append(("floor", floor_ports[shape], [floors[shape].pid]))
                for edge, port, pids in order if run % 2 == 0 else order[::-1]:
                    counted = args.callgrind if edge in ("originlock", "floor") else None
                    r = measure(edge, shape, port, pids, origin_pids, args.duration, counted)
                    r["run"] = run
                    results.append(r)
                    if not args.json:
                        print(
                            f"run {run + 1} {shape:<18} {edge:<10} rps={r['rps']:>8.1f} p50={r['p50_ms']:.2f}ms "
                            f"p99={r['p99_ms']:.2f}ms edge={r['edge_us_per_req']:.1f}us/req "
                            f"(user {r['edge_user_us_per_req']:.1f}) origin={r['origin_us_per_req']:.1f}us/req "
                            f"non2xx={r['non2xx']} {r['socket_errors']}",
                            flush=True,
                        )
        reused = origin_reuse(tmp / "origin-access.log", origin_ports)
    finally:
        serve.terminate()
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
        for proc in (nginx_edge, origin):
            if proc is not None:
                proc.stop()
        for floor in floors.values():
            floor.terminate()
            floor.wait(10)
        lines = {name: count_lines(tmp / f"{name}-access.log") for name in ("originlock", "nginx")}
        if args.venv is None:
            shutil.rmtree(tmp, ignore_errors=True)

    summary = summarize(results, shapes)
    report = {
        "runs": results,
        "median": summary,
        "origin_session_reused": reused,
        "access_log_lines": lines,
        "idle_ms_per_s": idle,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_summary(summary, args.runs, args.duration)
        print(f"origin sessions reused (origin log, by origin port kind): {json.dumps(reused)}")
        print(f"access-log lines written: {json.dumps(lines)}")
        print_idle(idle, args.idle, summary)
    return 0


def idle_cpu(pids: list[int], seconds: float) -> float:
    """CPU milliseconds per second that ``pids`` spend with no request (10 ms ticks: coarse)."""
    before = sum(map(ticks, pids))
    time.sleep(seconds)
    return (sum(map(ticks, pids)) - before) / CLK_TCK * 1000 / seconds


if __name__ == "__main__":
    sys.exit(main())
