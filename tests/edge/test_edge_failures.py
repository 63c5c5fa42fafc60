"""Origin failures (520-525) with scripted origins, the idle-died retry, and HTTP/1.1 rejections sent
as raw bytes."""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.origin.connector import OriginTimeouts
from originlock.snapshot.model import SslMode
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head
from originlock.tls.issue import issue_ca

pytestmark = pytest.mark.slow

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


def reset_after_request(sock: socket.socket) -> None:
    read_request_head(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def garbage(sock: socket.socket) -> None:
    read_request_head(sock)
    sock.sendall(b"this is not http\r\n\r\n")


def stall(sock: socket.socket) -> None:
    read_request_head(sock)
    time.sleep(3)


def serve_once_then_die(sock: socket.socket) -> None:
    """Answer one request keep-alive, then drop the next one without a byte (died while idle)."""
    read_request_head(sock)
    sock.sendall(OK)
    read_request_head(sock)


def echo_ok(sock: socket.socket) -> None:
    while read_request_head(sock):
        sock.sendall(OK)


class Env:
    def __init__(self) -> None:
        self.http_port = free_port()
        self.https_port = free_port()
        self.origins: list[ScriptedOrigin] = []
        self.edge: EdgeThread | None = None


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    pki = TestPki()
    env = Env()
    q, p = env.http_port, env.https_port
    other = issue_ca("unrelated CA", now=pki.now)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tmp: Path = tmp_path_factory.mktemp("fail")
    cert, key = pki.write(tmp, "origin", pki.server("refuse.example.test"))
    tls.load_cert_chain(cert, key)
    tls.verify_mode = ssl.CERT_REQUIRED
    tls.load_verify_locations(cadata=other.cert_pem)
    full_backlog = ScriptedOrigin("127.0.0.12", q, echo_ok, backlog=0, accept=False)
    fillers = []
    for _ in range(4):  # fill the accept queue so further SYNs are dropped
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.12", q))
        fillers.append(s)
    env.origins = [
        ScriptedOrigin("127.0.0.10", q, reset_after_request),
        ScriptedOrigin("127.0.0.11", q, garbage),
        full_backlog,
        ScriptedOrigin("127.0.0.13", q, stall),
        ScriptedOrigin("127.0.0.14", p, echo_ok, tls=tls),
        ScriptedOrigin("127.0.0.15", q, serve_once_then_die),
        ScriptedOrigin("127.0.0.16", q, echo_ok),
    ]
    flex = SslMode.FLEXIBLE
    snapshot = make_snapshot(
        pki,
        make_route("reset.example.test", "127.0.0.10", ssl_mode=flex),
        make_route("garbage.example.test", "127.0.0.11", ssl_mode=flex),
        make_route("timeout.example.test", "127.0.0.12", ssl_mode=flex),
        make_route("stall.example.test", "127.0.0.13", ssl_mode=flex),
        make_route(
            "refuse.example.test",
            "127.0.0.14",
            ssl_mode=SslMode.ORIGIN_PULL if False else SslMode.FULL,
            client_cert=pki.global_client,
        ),
        make_route("dies.example.test", "127.0.0.15", ssl_mode=flex),
        make_route("ok.example.test", "127.0.0.16", ssl_mode=flex),
        make_route("down.example.test", "127.0.0.17", ssl_mode=flex),
    )
    config = EdgeConfig(
        http=("127.0.0.1", 0),
        https=("127.0.0.1", 0),
        origin_http_port=q,
        origin_https_port=p,
        origin_timeouts=OriginTimeouts(connect=1.0, handshake=2.0, read=1.0, write=1.0),
    )
    for origin in env.origins:
        origin.__enter__()
    try:
        with EdgeThread(config, MemorySnapshotSource(snapshot)) as edge:
            env.edge = edge
            yield env
    finally:
        for origin in env.origins:
            origin.close()
        for s in fillers:
            s.close()


def exchange(
    port: int, raw: bytes, *, tls_host: str | None = None, timeout: float = 10, until_close: bool = False
) -> bytes:
    """Send raw bytes, read until the edge closes the connection (or a full response if keep-alive)."""
    sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls_host is not None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=tls_host)
    with sock:
        sock.sendall(raw)
        data = b""
        while True:
            try:
                piece = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not piece:
                break
            data += piece
            if not until_close and b"\r\n\r\n" in data and b"Connection: close" not in data.split(b"\r\n\r\n")[0]:
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                if len(body) >= length:
                    break
    return data


def get(env: Env, host: str) -> bytes:
    assert env.edge is not None
    return exchange(env.edge.http_port, f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("reset.example.test", 520),
        ("garbage.example.test", 520),
        ("down.example.test", 521),
        ("timeout.example.test", 522),
        ("stall.example.test", 524),
    ],
)
def test_origin_failure_status(env: Env, host: str, status: int) -> None:
    response = get(env, host)
    assert response.startswith(f"HTTP/1.1 {status} ".encode()), response[:200]
    assert f"Error {status}".encode() in response
    assert b"Ray ID" in response


def test_tls_refusal_of_client_certificate_is_525(env: Env) -> None:
    assert env.edge is not None
    response = exchange(
        env.edge.https_port, b"GET / HTTP/1.1\r\nHost: refuse.example.test\r\n\r\n", tls_host="refuse.example.test"
    )
    assert response.startswith(b"HTTP/1.1 525 "), response[:200]
    assert b"is it requiring a client certificate the edge does not have?" in response


def test_connection_that_died_idle_is_retried_once(env: Env) -> None:
    assert env.edge is not None
    port = env.edge.http_port
    first = exchange(port, b"GET / HTTP/1.1\r\nHost: dies.example.test\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    second = exchange(port, b"GET / HTTP/1.1\r\nHost: dies.example.test\r\n\r\n")
    assert second.startswith(b"HTTP/1.1 200 "), second[:200]


REJECTED = {
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: ok.example.test\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate_differing_cl": b"POST / HTTP/1.1\r\nHost: ok.example.test\r\nContent-Length: 3\r\n"
    b"Content-Length: 4\r\n\r\nabcd",
    "bad_chunk_size": b"POST / HTTP/1.1\r\nHost: ok.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\nabc\r\n0\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: ok.example.test\r\nX-A: a\r\n  folded\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\nHost: ok.example.test\n\n",
    "space_before_colon": b"GET / HTTP/1.1\r\nHost : ok.example.test\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_ambiguous_requests_are_rejected_and_closed(env: Env, name: str) -> None:
    assert env.edge is not None
    before = env.origins[-1].connections
    response = exchange(env.edge.http_port, REJECTED[name])
    assert response.startswith(b"HTTP/1.1 400 "), response[:200]
    assert b"Connection: close" in response
    assert env.origins[-1].connections == before  # never forwarded


def test_huge_headers_are_431(env: Env) -> None:
    assert env.edge is not None
    raw = (
        b"GET / HTTP/1.1\r\nHost: ok.example.test\r\n"
        + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(40))
        + b"\r\n"
    )
    assert exchange(env.edge.http_port, raw).startswith(b"HTTP/1.1 431 ")


def test_long_url_is_414(env: Env) -> None:
    assert env.edge is not None
    raw = b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\nHost: ok.example.test\r\n\r\n"
    assert exchange(env.edge.http_port, raw).startswith(b"HTTP/1.1 414 ")


def test_pipelined_requests_answered_in_order(env: Env) -> None:
    assert env.edge is not None
    raw = (
        b"GET /1 HTTP/1.1\r\nHost: ok.example.test\r\n\r\n"
        b"GET /2 HTTP/1.1\r\nHost: unknown.test\r\n\r\n"
        b"GET /3 HTTP/1.1\r\nHost: ok.example.test\r\nConnection: close\r\n\r\n"
    )
    response = exchange(env.edge.http_port, raw, until_close=True)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", response)
    assert statuses == [b"200", b"530", b"200"]


def test_chunked_upload_with_expect_continue_is_streamed(env: Env) -> None:
    assert env.edge is not None
    sock = socket.create_connection(("127.0.0.1", env.edge.http_port), timeout=5)
    with sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: ok.example.test\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"5\r\nhello\r\n0\r\n\r\n")
        assert sock.recv(1000).startswith(b"HTTP/1.1 200 OK")
