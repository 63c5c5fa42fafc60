"""End-to-end: visitor (curl) -> edge -> real nginx origins requiring a client certificate.

One nginx per module listens on several loopback addresses with the same ports (the origin port is
deployment-wide), each address being a differently configured origin.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.snapshot.model import SslMode
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.require import require_executable
from originlock.tls.issue import issue_ca, issue_leaf

from .conftest import curl

pytestmark = pytest.mark.slow

ECHO = (
    'return 200 "dn=$ssl_client_s_dn scheme=$scheme host=$host xff=$http_x_forwarded_for '
    "proto=$http_x_forwarded_proto cfip=$http_cf_connecting_ip visitor=$http_cf_visitor ray=$http_cf_ray "
    'conn=$http_connection\\n";'
)
MTLS_ON = "127.0.0.1"
MTLS_OPTIONAL = "127.0.0.2"
SELF_SIGNED = "127.0.0.3"
OTHER_CA = "127.0.0.4"


class Env:
    def __init__(self, tmp: Path, pki: TestPki) -> None:
        self.tmp = tmp
        self.pki = pki
        self.customer_ca = issue_ca("customer CA", now=pki.now)
        self.other_ca = issue_ca("unrelated CA", now=pki.now)
        self.host_cert = pki.client("host-cert.example.test", ca=self.customer_ca, source="hostname")
        self.zone_cert = pki.client("zone-a", ca=self.customer_ca, id="zone-a")
        self.https_port = free_port()
        self.http_port = free_port()
        self.edge_ca = tmp / "edge-ca.pem"
        self.edge_ca.write_text(pki.edge_ca.cert_pem)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pki: TestPki) -> Iterator[Env]:
    nginx = require_executable("nginx")
    tmp = tmp_path_factory.mktemp("aop")
    env = Env(tmp, pki)
    names = ["origin.test", "*.example.test", "127.0.0.1"]
    server_cert, server_key = pki.write(tmp, "origin", pki.server(*names))
    self_ca = issue_ca("self-signed origin", now=pki.now)
    ss_cert, ss_key = pki.write(
        tmp, "selfsigned", issue_leaf(self_ca, "origin.test", now=pki.now, client=False, server=True, sans=names)
    )
    trusted = tmp / "trusted-clients.pem"
    trusted.write_text(pki.origin_pull_ca.cert_pem + env.customer_ca.cert_pem)
    other = tmp / "other-ca.pem"
    other.write_text(env.other_ca.cert_pem)
    p, q = env.https_port, env.http_port

    def tls_server(addr: str, cert: Path, key: Path, verify: str = "", trust: Path | None = None) -> str:
        client = f"ssl_client_certificate {trust}; ssl_verify_client {verify};" if verify else ""
        return (
            f"server {{ listen {addr}:{p} ssl; ssl_certificate {cert}; ssl_certificate_key {key}; {client}\n"
            f"  location / {{ {ECHO} }} }}\n"
        )

    block = (
        tls_server(MTLS_ON, server_cert, server_key, "on", trusted)
        + tls_server(MTLS_OPTIONAL, server_cert, server_key, "optional", trusted)
        + tls_server(SELF_SIGNED, ss_cert, ss_key)
        + tls_server(OTHER_CA, server_cert, server_key, "on", other)
        + f"server {{ listen 127.0.0.1:{q}; location / {{ {ECHO} }} }}\n"
    )
    proc = NginxProcess(nginx, tmp / "nginx", block, ports=[p, q]).start()
    try:
        yield env
    finally:
        proc.stop()


def routes(env: Env) -> list:  # type: ignore[type-arg]
    pki = env.pki
    return [
        make_route("host-cert.example.test", MTLS_ON, client_cert=env.host_cert),
        make_route("zone-cert.example.test", MTLS_ON, client_cert=env.zone_cert),
        make_route("global.example.test", MTLS_ON, client_cert=pki.global_client),
        make_route("disabled.example.test", MTLS_OPTIONAL),
        make_route("disabled-required.example.test", MTLS_ON),
        make_route("strict.example.test", MTLS_ON, ssl_mode=SslMode.STRICT, client_cert=env.zone_cert),
        make_route("strict-selfsigned.example.test", SELF_SIGNED, ssl_mode=SslMode.STRICT),
        make_route("full-selfsigned.example.test", SELF_SIGNED, ssl_mode=SslMode.FULL),
        make_route("flexible.example.test", MTLS_ON, ssl_mode=SslMode.FLEXIBLE, client_cert=env.zone_cert),
        make_route("off.example.test", MTLS_ON, ssl_mode=SslMode.OFF),
        make_route("pull.example.test", MTLS_ON, ssl_mode=SslMode.ORIGIN_PULL, client_cert=env.zone_cert),
        make_route("always.example.test", MTLS_ON, always_use_https=True, client_cert=env.zone_cert),
        make_route("other-ca.example.test", OTHER_CA, client_cert=env.zone_cert),
        make_route("cname.example.test", "localhost", record_type="CNAME", client_cert=env.zone_cert),
        make_route("cname-broken.example.test", "does-not-exist.invalid", record_type="CNAME"),
        make_route("expired.example.test", MTLS_ON, client_cert_error="certificate z1 expired"),
    ]


@pytest.fixture(scope="module")
def edge(env: Env) -> Iterator[EdgeThread]:
    source = MemorySnapshotSource(make_snapshot(env.pki, *routes(env)))
    config = EdgeConfig(
        http=("127.0.0.1", 0), https=("127.0.0.1", 0), origin_https_port=env.https_port, origin_http_port=env.http_port
    )
    with EdgeThread(config, source) as thread:
        yield thread


def get(
    env: Env, edge: EdgeThread, host: str, path: str = "/", *, scheme: str = "https", extra: tuple[str, ...] = ()
) -> tuple[int, dict[str, str], str]:
    port = edge.https_port if scheme == "https" else edge.http_port
    return curl(
        f"{scheme}://{host}:{port}{path}", resolve=[f"{host}:{port}:127.0.0.1"], cacert=str(env.edge_ca), extra=extra
    )


@pytest.mark.parametrize(
    ("host", "dn"),
    [
        ("host-cert.example.test", "CN=host-cert.example.test"),
        ("zone-cert.example.test", "CN=zone-a"),
        ("global.example.test", "CN=origin-pull.originlock.test"),
        ("disabled.example.test", ""),
    ],
)
def test_precedence_case_presents_expected_certificate(env: Env, edge: EdgeThread, host: str, dn: str) -> None:
    status, headers, body = get(env, edge, host)
    assert status == 200, (headers, body)
    assert body.startswith(f"dn={dn} scheme=https host={host} "), (headers, body)
    assert "cf-ray" in headers


def test_no_certificate_to_requiring_origin_passes_nginx_400_through(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "disabled-required.example.test")
    assert status == 400
    assert "No required SSL certificate was sent" in body


def test_straight_to_origin_is_refused(env: Env, edge: EdgeThread) -> None:
    url = f"https://origin.test:{env.https_port}/"
    status, _, body = curl(url, resolve=[f"origin.test:{env.https_port}:127.0.0.1"], extra=["-k"])
    assert status == 400
    assert "No required SSL certificate was sent" in body


def test_forwarding_headers(env: Env, edge: EdgeThread) -> None:
    status, headers, body = get(
        env,
        edge,
        "zone-cert.example.test",
        extra=("-H", "X-Forwarded-For: 10.0.0.9", "-H", "CF-Connecting-IP: 6.6.6.6"),
    )
    assert status == 200
    assert "xff=10.0.0.9, 127.0.0.1 proto=https cfip=127.0.0.1 " in body
    assert 'visitor={"scheme":"https"}' in body
    assert f"ray={headers['cf-ray']} " in body
    assert headers["cf-ray"].endswith("-OLK") and len(headers["cf-ray"]) == 20
    assert "conn= " in body or body.rstrip().endswith("conn=")


def test_full_accepts_self_signed_origin(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "full-selfsigned.example.test")
    assert status == 200 and "scheme=https" in body


def test_strict_accepts_origin_ca_certificate(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "strict.example.test")
    assert status == 200 and "dn=CN=zone-a" in body


def test_strict_rejects_self_signed_origin_with_526(env: Env, edge: EdgeThread) -> None:
    status, headers, body = get(env, edge, "strict-selfsigned.example.test")
    assert status == 526
    assert "Error 526" in body and headers["cf-ray"] in body


def test_flexible_pulls_over_http(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "flexible.example.test")
    assert status == 200 and body.startswith("dn= scheme=http ")


def test_off_redirects_https_to_http(env: Env, edge: EdgeThread) -> None:
    status, headers, _ = get(env, edge, "off.example.test", "/a?b=1")
    assert status == 301
    assert headers["location"] == f"http://off.example.test:{edge.http_port}/a?b=1"
    status, _, body = get(env, edge, "off.example.test", scheme="http")
    assert status == 200 and "scheme=http" in body


def test_full_follows_visitor_scheme(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "zone-cert.example.test", scheme="http")
    assert status == 200 and body.startswith("dn= scheme=http ")


def test_origin_pull_always_uses_https(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "pull.example.test", scheme="http")
    assert status == 200 and body.startswith("dn=CN=zone-a scheme=https ")


def test_always_use_https_redirects(env: Env, edge: EdgeThread) -> None:
    status, headers, _ = get(env, edge, "always.example.test", "/x", scheme="http")
    assert status == 301
    assert headers["location"] == f"https://always.example.test:{edge.https_port}/x"


def test_origin_trusting_another_ca_answers_with_its_own_error(env: Env, edge: EdgeThread) -> None:
    # nginx completes the handshake and answers 400 itself (its verify callback accepts, then the HTTP
    # layer refuses); a TLS-level refusal is 525, tested with a scripted origin in test_edge_failures.
    status, _, body = get(env, edge, "other-ca.example.test")
    assert status == 400 and "The SSL certificate error" in body


def test_cname_origin_is_resolved(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "cname.example.test")
    assert status == 200 and "dn=CN=zone-a" in body


def test_cname_that_does_not_resolve_is_530_1016(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "cname-broken.example.test")
    assert status == 530 and "Error 1016" in body


def test_unknown_hostname_is_1001(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "nope.other.test", scheme="http")
    assert status == 530 and "Error 1001" in body


def test_unusable_chosen_certificate_fails_closed_with_525(env: Env, edge: EdgeThread) -> None:
    status, _, body = get(env, edge, "expired.example.test")
    assert status == 525 and "client certificate" in body


def test_visitor_certificate_is_chosen_by_sni(env: Env, edge: EdgeThread) -> None:
    out = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{edge.https_port}",
            "-servername",
            "zone-cert.example.test",
            "-CAfile",
            str(env.edge_ca),
            "-verify_return_error",
            "-alpn",
            "http/1.1",
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert "Verify return code: 0 (ok)" in out.stdout
    assert "subject=CN = zone-cert.example.test" in out.stdout
    assert "ALPN protocol: http/1.1" in out.stdout


def test_identity_isolation_under_concurrent_load(env: Env, edge: EdgeThread) -> None:
    """Two hostnames, two certificates, one origin, one pool: every echoed DN matches its hostname."""
    hosts = {"host-cert.example.test": "CN=host-cert.example.test", "zone-cert.example.test": "CN=zone-a"}

    def worker(host: str) -> list[str]:
        # Raw keep-alive sockets through the edge, many requests each.
        import ssl

        ctx = ssl.create_default_context(cafile=str(env.edge_ca))
        seen = []
        with (
            socket.create_connection(("127.0.0.1", edge.https_port)) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as sock,
        ):
            reader = sock.makefile("rb")
            for _ in range(40):
                sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                status = reader.readline()
                length = 0
                while (line := reader.readline()) != b"\r\n":
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                assert status.startswith(b"HTTP/1.1 200"), status
                seen.append(reader.read(length).decode().split(" ")[0][3:])
        return [f"{host}:{dn}" for dn in seen]

    with ThreadPoolExecutor(16) as executor:
        results = [r for batch in executor.map(worker, list(hosts) * 8) for r in batch]
    assert len(results) == 16 * 40
    for item in results:
        host, dn = item.split(":", 1)
        assert dn == hosts[host], item
    stats = edge.server.state.pool.statistics() if edge.server else None
    assert stats is not None and stats.reused > 0


def test_rotating_zone_certificate_under_load_fails_no_request(env: Env) -> None:
    """Swap the snapshot while requests flow: none fails, new connections present the new certificate,
    and pooled connections authenticated with the old one are retired."""
    import threading

    new_cert = env.pki.client("zone-b", ca=env.customer_ca, id="zone-b")
    # origin_pull: HTTP visitors (cheap curl) still get TLS pulls with the AOP certificate.
    pull_old = make_route("rot.example.test", MTLS_ON, ssl_mode=SslMode.ORIGIN_PULL, client_cert=env.zone_cert)
    source = MemorySnapshotSource(make_snapshot(env.pki, pull_old, generation=1))
    config = EdgeConfig(
        http=("127.0.0.1", 0), https=None, origin_https_port=env.https_port, origin_http_port=env.http_port
    )
    seen: list[str] = []
    stop = threading.Event()

    def load(port: int) -> None:
        while not stop.is_set():
            status, _, body = curl(f"http://rot.example.test:{port}/", resolve=[f"rot.example.test:{port}:127.0.0.1"])
            assert status == 200, body
            seen.append(body.split(" ")[0])

    with EdgeThread(config, source) as thread:
        workers = [threading.Thread(target=load, args=(thread.http_port,)) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.8)
        pull_new = make_route("rot.example.test", MTLS_ON, ssl_mode=SslMode.ORIGIN_PULL, client_cert=new_cert)
        source.swap(make_snapshot(env.pki, pull_new, generation=2))
        time.sleep(0.8)
        n_after_swap = len(seen)
        time.sleep(0.5)
        stop.set()
        for w in workers:
            w.join()
        assert thread.server is not None
        stats = thread.server.state.pool.statistics()
    assert "dn=CN=zone-a" in seen[:5]
    assert set(seen[n_after_swap:]) == {"dn=CN=zone-b"}
    assert stats.keys == 1  # the zone-a key has no connections left
