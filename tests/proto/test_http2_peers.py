"""proto/http2.py against real HTTP/2 clients (curl --http2, nghttp, h2load: nghttp2, the reference
implementation): a small blocking TLS server in a thread drives one :class:`H2Server` per connection, the
way the edge's protocol object will, and answers every request with what it received."""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.proto.events import RequestReceived
from originlock.proto.http2 import (
    H2Server,
    RequestRefused,
    RequestStarted,
    StreamData,
    StreamEnded,
    StreamReset,
)
from originlock.testing.pki import TestPki
from originlock.testing.require import require_executable
from originlock.tls.issue import issue_leaf

BIG = 1 << 20


def _respond(server: H2Server, stream_id: int, request: RequestReceived, body: bytes) -> None:
    if request.target.startswith(b"/big"):
        payload = b"b" * BIG
    else:
        host = request.header(b"host") or b"?"
        summary = b"%s %s %d host=%s\n" % (request.method, request.target, len(body), host)
        payload = summary + hashlib.sha256(body).hexdigest().encode()
    fields = [
        (b"Content-Type", b"text/plain"),
        (b"Connection", b"keep-alive"),
        (b"Content-Length", b"%d" % len(payload)),
    ]
    server.send_response(stream_id, 200, fields, end_stream=False)
    server.send_data(stream_id, payload, end_stream=True)


def _serve(conn: ssl.SSLSocket) -> None:
    server = H2Server()
    server.initiate()
    requests: dict[int, tuple[RequestReceived, list[bytes]]] = {}
    with conn:
        conn.sendall(server.data_to_send())
        while not server.closed:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            for event in server.feed(data):
                if isinstance(event, RequestStarted):
                    requests[event.stream_id] = (event.request, [])
                elif isinstance(event, StreamData):
                    requests[event.stream_id][1].append(event.data)
                    server.acknowledge(event.stream_id, len(event.data))
                elif isinstance(event, StreamEnded):
                    request, body = requests.pop(event.stream_id)
                    _respond(server, event.stream_id, request, b"".join(body))
                elif isinstance(event, RequestRefused):
                    server.send_response(event.stream_id, event.error.status_hint, [], end_stream=True)
                elif isinstance(event, StreamReset):
                    requests.pop(event.stream_id, None)
            out = server.data_to_send()
            if out:
                conn.sendall(out)


@pytest.fixture(scope="module")
def h2_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory: Path = tmp_path_factory.mktemp("h2peers")
    pki = TestPki()
    cert, key = pki.write(
        directory, "edge", issue_leaf(pki.edge_ca, "localhost", now=pki.now, client=False, server=True)
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
                conn = context.wrap_socket(raw, server_side=True)
            except OSError:
                continue
            threading.Thread(target=_serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(5)


def _run(args: list[str], data: bytes | None = None) -> bytes:
    return subprocess.run(args, input=data, capture_output=True, check=True, timeout=60).stdout


def test_curl_http2_get_is_normalised_and_gets_host_from_authority(h2_port: int) -> None:
    curl = require_executable("curl")
    url = f"https://localhost:{h2_port}/a/./b/../c?q=1"
    out = _run([curl, "-sk", "--http2", "--path-as-is", "-w", "\\n%{http_version}", url])
    assert out.split(b"\n")[0] == b"GET /a/c?q=1 0 host=localhost:%d" % h2_port
    assert out.endswith(b"\n2")


def test_curl_http2_upload_of_a_megabyte_goes_through_flow_control(h2_port: int) -> None:
    curl = require_executable("curl")
    body = bytes(range(256)) * (BIG // 256 + 7)
    out = _run([curl, "-sk", "--http2", "--data-binary", "@-", f"https://localhost:{h2_port}/up"], body)
    assert out.split(b"\n") == [
        b"POST /up %d host=localhost:%d" % (len(body), h2_port),
        hashlib.sha256(body).hexdigest().encode(),
    ]


def test_nghttp_with_a_64k_window_downloads_a_megabyte(h2_port: int) -> None:
    nghttp = require_executable("nghttp")
    out = _run([nghttp, "-w", "16", "-W", "16", f"https://localhost:{h2_port}/big"])
    assert out == b"b" * BIG


def test_h2load_many_concurrent_streams_all_succeed(h2_port: int) -> None:
    h2load = require_executable("h2load")
    out = _run([h2load, "-n", "2000", "-c", "2", "-m", "20", f"https://localhost:{h2_port}/x"]).decode()
    assert "2000 succeeded, 0 failed" in out, out
    assert "status codes: 2000 2xx" in out, out
