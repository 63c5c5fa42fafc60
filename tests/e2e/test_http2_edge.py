"""HTTP/2 to visitors through `originlock serve`: curl --http2 and nghttp as clients, a real nginx origin that
requires the edge's client certificate over pooled HTTP/1.1, and the floods the protocol layer must survive
sent as raw frames over the edge's TLS."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cloudflare import Cloudflare
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, ResponseReceived, StreamEnded
from hyperframe.frame import ContinuationFrame, HeadersFrame

from originlock.testing.nginx import NginxProcess, free_port, tls_server_block
from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki

HOST = "app.h2.test"
#: A zone with the ``http2`` setting off.
HTTP1_HOST = "app.h1only.test"
BIG = 3 * 1024 * 1024 + 17
ENHANCE_YOUR_CALM = 0xB


@dataclass
class Setup:
    serve: ServeProcess
    nginx: NginxProcess
    work: Path

    def curl(self, *args: str, host: str = HOST) -> subprocess.CompletedProcess[str]:
        """curl to the edge, ``host`` resolved to it."""
        port = self.serve.https_port
        return subprocess.run(
            ["curl", "-sS", "-k", "--max-time", "20", "--resolve", f"{host}:{port}:127.0.0.1", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def url(self, path: str, host: str = HOST) -> str:
        return f"https://{host}:{self.serve.https_port}{path}"

    def tls(self) -> ssl.SSLSocket:
        """A TLS connection to the edge that negotiated ``h2``."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        sock = context.wrap_socket(
            socket.create_connection(("127.0.0.1", self.serve.https_port), 5), server_hostname=HOST
        )
        assert sock.selected_alpn_protocol() == "h2"
        sock.settimeout(5)
        return sock


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    nginx_bin = require_executable("nginx")
    require_executable("curl")
    work = tmp_path_factory.mktemp("h2-edge")
    pki = UploadPki.create("h2 origin CA")
    server = pki.server("origin.h2.test", sans=(HOST, "127.0.0.1"))
    (work / "origin.pem").write_text(server.cert_pem)
    (work / "origin.key").write_bytes(server.key_pem)
    (work / "www").mkdir()
    (work / "www" / "big.bin").write_bytes(bytes(range(256)) * (BIG // 256) + b"x" * (BIG % 256))
    origin_port = free_port()
    serve = start_serve(work / "data", extra_args=["--origin-https-port", str(origin_port), "--access-log", "off"])
    try:
        (work / "pull-ca.pem").write_text(httpx.get(f"{serve.api_url}/ca/origin-pull.pem").text)
        extra = (
            f"location /big.bin {{ root {work / 'www'}; }}\n"
            '    location /post { return 200 "len=$content_length proto=$server_protocol\\n"; }\n'
        )
        block = tls_server_block(
            origin_port,
            work / "origin.pem",
            work / "origin.key",
            client_ca=work / "pull-ca.pem",
            body="dn=$ssl_client_s_dn proto=$server_protocol host=$host\\n",
            extra=extra,
        )
        nginx = NginxProcess(nginx_bin, work / "nginx", block, ports=[origin_port]).start()
        try:
            cf = Cloudflare(api_token=serve.token, base_url=f"{serve.api_url}/client/v4", max_retries=0)
            account = next(iter(cf.accounts.list()))
            zone = cf.zones.create(account={"id": account.id}, name="h2.test")
            assert zone is not None
            cf.dns.records.create(zone_id=zone.id, name=HOST, type="A", content="127.0.0.1", ttl=1, proxied=True)
            cf.zones.settings.edit("ssl", zone_id=zone.id, value="full")
            cf.zones.settings.edit("tls_client_auth", zone_id=zone.id, value="on")
            off = cf.zones.create(account={"id": account.id}, name="h1only.test")
            assert off is not None
            cf.dns.records.create(zone_id=off.id, name=HTTP1_HOST, type="A", content="127.0.0.1", ttl=1, proxied=True)
            cf.zones.settings.edit("ssl", zone_id=off.id, value="full")
            cf.zones.settings.edit("tls_client_auth", zone_id=off.id, value="on")
            cf.zones.settings.edit("http2", zone_id=off.id, value="off")  # type: ignore[arg-type]
            setup = Setup(serve, nginx, work)
            deadline = time.monotonic() + 15
            while "dn=" not in setup.curl("--http2", setup.url("/")).stdout and time.monotonic() < deadline:
                time.sleep(0.2)
            yield setup
        finally:
            nginx.stop()
    finally:
        serve.stop()


def test_curl_gets_http2_and_the_origin_gets_the_client_certificate(setup: Setup) -> None:
    run = setup.curl("--http2", "-D", "-", "-w", "\nversion=%{http_version}", setup.url("/"))
    assert run.returncode == 0, run.stderr
    assert "version=2" in run.stdout
    head, _, _ = run.stdout.partition("\r\n\r\n")
    assert head.startswith("HTTP/2 200")
    assert "cf-ray:" in head.lower() and "connection:" not in head.lower()
    # The origin saw the deployment's shared client certificate over pooled HTTP/1.1.
    assert "dn=CN=" in run.stdout and "proto=HTTP/1.1" in run.stdout and f"host={HOST}" in run.stdout


def test_the_zone_setting_http2_off_offers_http_1_1_only(setup: Setup) -> None:
    deadline = time.monotonic() + 15
    run = setup.curl("--http2", "-w", "\nversion=%{http_version}", setup.url("/", host=HTTP1_HOST), host=HTTP1_HOST)
    while "dn=" not in run.stdout and time.monotonic() < deadline:
        time.sleep(0.2)
        run = setup.curl("--http2", "-w", "\nversion=%{http_version}", setup.url("/", host=HTTP1_HOST), host=HTTP1_HOST)
    assert "dn=CN=" in run.stdout and run.stdout.endswith("version=1.1"), run.stdout + run.stderr
    # The other zone, same listener, same moment: HTTP/2.
    assert setup.curl("--http2", "-w", "%{http_version}", "-o", "/dev/null", setup.url("/")).stdout == "2"


def test_a_large_body_flows_under_flow_control(setup: Setup) -> None:
    out = setup.work / "big.out"
    run = setup.curl("--http2", "-o", str(out), "-w", "%{http_version} %{size_download}", setup.url("/big.bin"))
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"2 {BIG}"
    assert out.read_bytes() == (setup.work / "www" / "big.bin").read_bytes()


def test_request_bodies_reach_the_origin(setup: Setup) -> None:
    body = setup.work / "upload.bin"
    body.write_bytes(b"u" * 300_000)
    run = setup.curl("--http2", "--data-binary", f"@{body}", setup.url("/post"))
    assert run.returncode == 0, run.stderr
    assert run.stdout == "len=300000 proto=HTTP/1.1\n"


def test_many_concurrent_streams_on_one_connection(setup: Setup) -> None:
    nghttp = require_executable("nghttp")
    urls = [setup.url(f"/?n={i}") for i in range(40)]
    # nghttp resolves the name itself: point it at the edge with the authority it should send.
    run = subprocess.run(
        [nghttp, "-n", "-s", "-v", "-H", f":authority: {HOST}", *[u.replace(HOST, "127.0.0.1") for u in urls]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    assert run.stdout.count(":status: 200") == 40
    assert "GOAWAY" not in run.stdout.split("[  ")[0]  # no early GOAWAY


def test_the_edges_own_answers_go_out_over_http2_too(setup: Setup) -> None:
    """An error page (unknown hostname: 1001) and a refused request (a 20 KiB path: 414) take the same
    response writer as an origin's response, framed for HTTP/2."""
    other = "nowhere.test"
    unknown = setup.curl("--http2", "-w", "\n%{http_code} %{http_version}", setup.url("/", host=other), host=other)
    assert unknown.stdout.endswith("\n530 2"), unknown.stdout[-300:]
    assert "1001" in unknown.stdout
    long = setup.curl("--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", setup.url("/" + "a" * 20000))
    assert long.stdout == "414 2", long.stdout


def _drain(sock: ssl.SSLSocket, conn: H2Connection, until: float) -> list[object]:
    events: list[object] = []
    while time.monotonic() < until:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ssl.SSLError, OSError):
            break
        if not data:
            break
        events.extend(conn.receive_data(data))
        if any(isinstance(e, ConnectionTerminated) for e in events):
            break
    return events


def test_rapid_reset_gets_goaway_and_the_edge_keeps_serving(setup: Setup) -> None:
    sock = setup.tls()
    conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    headers = [(":method", "GET"), (":scheme", "https"), (":authority", HOST), (":path", "/")]
    for n in range(400):
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, headers)
        conn.reset_stream(stream_id)
        if n % 50 == 49:
            sock.sendall(conn.data_to_send())
    with contextlib.suppress(OSError):  # the edge may already have closed after its GOAWAY
        sock.sendall(conn.data_to_send())
    events = _drain(sock, conn, time.monotonic() + 10)
    ended = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert ended and ended[0].error_code == ENHANCE_YOUR_CALM
    sock.close()
    run = setup.curl("--http2", "-w", "\n%{http_version}", setup.url("/"))
    assert run.stdout.endswith("\n2") and "dn=CN=" in run.stdout


def test_continuation_flood_is_cut_off(setup: Setup) -> None:
    sock = setup.tls()
    conn = H2Connection(H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    block = conn.encoder.encode([(":method", "GET"), (":scheme", "https"), (":authority", HOST), (":path", "/")])
    first = HeadersFrame(1, data=block)  # no END_HEADERS: the block goes on in CONTINUATION frames
    sock.sendall(first.serialize())
    sent = 0
    try:
        for _ in range(2000):
            sock.sendall(ContinuationFrame(1, data=b"a" * 1024).serialize())
            sent += 1
    except OSError:
        pass
    events = _drain(sock, conn, time.monotonic() + 10)
    ended = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert ended and ended[0].error_code == ENHANCE_YOUR_CALM, (sent, events[-3:])
    assert not [e for e in events if isinstance(e, ResponseReceived | StreamEnded)]
    sock.close()
