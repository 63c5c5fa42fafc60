"""The callback-driven part of the exchange (edge/exchange.py) on *reused* origin connections, and its hand-overs
to the task-based path: a response split over several reads, a stalled origin (524), HEAD followed by
GET on one origin connection, and the visitor idle timeout."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.origin.connector import OriginTimeouts
from originlock.snapshot.model import SslMode
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head

pytestmark = pytest.mark.slow


def split_second_response(sock: socket.socket) -> None:
    """Every response after the first arrives in three pieces with pauses (head, then body parts)."""
    first = True
    while read_request_head(sock):
        if first:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
            first = False
            continue
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        time.sleep(0.1)
        sock.sendall(b"split")
        time.sleep(0.1)
        sock.sendall(b"-body")


def stall_second(sock: socket.socket) -> None:
    read_request_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
    read_request_head(sock)
    time.sleep(3)


def head_aware(sock: socket.socket) -> None:
    """Announces a body to HEAD (as origins do) without sending it."""
    while head := read_request_head(sock):
        if head.startswith(b"HEAD "):
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        else:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")


def extra_after_response(sock: socket.socket) -> None:
    """Sends a second, unasked-for response right behind each answer, in the same write."""
    while read_request_head(sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + b"HTTP/1.1 200 OK\r\nX-Injected: 1\r\n\r\n")


class Env:
    def __init__(self, edge: EdgeThread, origins: list[ScriptedOrigin]) -> None:
        self.edge = edge
        self.origins = origins


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    pki = TestPki()
    port = free_port()
    origins = [
        ScriptedOrigin("127.0.0.30", port, split_second_response),
        ScriptedOrigin("127.0.0.31", port, stall_second),
        ScriptedOrigin("127.0.0.32", port, head_aware),
        ScriptedOrigin("127.0.0.33", port, extra_after_response),
    ]
    flex = SslMode.FLEXIBLE
    snapshot = make_snapshot(
        pki,
        make_route("split.example.test", "127.0.0.30", ssl_mode=flex),
        make_route("stall.example.test", "127.0.0.31", ssl_mode=flex),
        make_route("head.example.test", "127.0.0.32", ssl_mode=flex),
        make_route("extra.example.test", "127.0.0.33", ssl_mode=flex),
    )
    config = EdgeConfig(
        http=("127.0.0.1", 0),
        https=None,
        origin_http_port=port,
        origin_timeouts=OriginTimeouts(connect=1.0, handshake=1.0, read=1.0, write=1.0),
        idle_timeout=1.0,
        header_timeout=0.3,
    )
    for origin in origins:
        origin.__enter__()
    try:
        with EdgeThread(config, MemorySnapshotSource(snapshot)) as edge:
            yield Env(edge, origins)
    finally:
        for origin in origins:
            origin.close()


def _responses(sock: socket.socket, count: int, head_requests: int = 0) -> list[tuple[int, bytes]]:
    """Read ``count`` Content-Length responses (the first ``head_requests`` of which answer HEAD)."""
    data = b""
    out: list[tuple[int, bytes]] = []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            assert piece, f"connection closed after {out}"
            data += piece
        head, _, data = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        match = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
        length = 0 if len(out) < head_requests or match is None else int(match.group(1))
        while len(data) < length:
            piece = sock.recv(65536)
            assert piece
            data += piece
        out.append((status, data[:length]))
        data = data[length:]
    return out


def _visitor(env: Env) -> socket.socket:
    assert env.edge.http_port is not None
    return socket.create_connection(("127.0.0.1", env.edge.http_port), timeout=10)


def test_response_split_over_reads_on_a_reused_connection_is_streamed(env: Env) -> None:
    with _visitor(env) as sock:
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: split.example.test\r\n\r\n")
            time.sleep(0.05)
        assert _responses(sock, 3) == [(200, b"one"), (200, b"split-body"), (200, b"split-body")]
    assert env.origins[0].connections == 1  # the same origin connection carried all three


def test_stalled_origin_on_a_reused_connection_is_524(env: Env) -> None:
    with _visitor(env) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: stall.example.test\r\n\r\n")
        assert _responses(sock, 1) == [(200, b"one")]
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: stall.example.test\r\n\r\n")
        ((status, _),) = _responses(sock, 1)
    assert status == 524
    assert 0.8 < time.monotonic() - started < 2.5


def test_head_then_get_on_one_origin_connection(env: Env) -> None:
    with _visitor(env) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: head.example.test\r\n\r\n")
        assert _responses(sock, 1) == [(200, b"hello")]
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: head.example.test\r\n\r\n")
        assert _responses(sock, 1, head_requests=1) == [(200, b"")]
        sock.sendall(b"GET / HTTP/1.1\r\nHost: head.example.test\r\n\r\n")
        assert _responses(sock, 1) == [(200, b"hello")]
    assert env.origins[2].connections == 1


def test_idle_visitor_connection_is_closed_after_the_idle_timeout(env: Env) -> None:
    with _visitor(env) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: head.example.test\r\n\r\n")
        assert _responses(sock, 1) == [(200, b"hello")]
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the edge
    assert 0.8 < time.monotonic() - started < 3.0


def test_a_trickling_request_head_is_cut_off_by_the_header_timeout(env: Env) -> None:
    """Slowloris: bytes of a head that never completes do not keep the connection (0.3 s here, idle 1 s)."""
    with _visitor(env) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        closed = False
        for _ in range(20):  # one header byte every 50 ms
            time.sleep(0.05)
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
        if not closed:
            sock.settimeout(3)
            assert sock.recv(100) == b""
    elapsed = time.monotonic() - started
    assert elapsed < 0.8, elapsed  # well before the 1 s idle timeout, let alone a trickle's lifetime


def test_a_complete_head_after_idle_time_is_served(env: Env) -> None:
    """The header timeout starts with the head's first byte, not with the connection's idle time."""
    with _visitor(env) as sock:
        time.sleep(0.5)  # idle longer than the header timeout, shorter than the idle one
        sock.sendall(b"GET / HTTP/1.1\r\nHost: head.example.test\r\n\r\n")
        assert _responses(sock, 1) == [(200, b"hello")]


def test_local_answers_keep_the_connection_and_pipelined_requests_stay_in_order(env: Env) -> None:
    """One request per read is served without the queue; an edge-generated answer (here 1001) must still
    leave the connection open for the next one, and a read holding several requests still answers them in
    order (through the queue)."""
    with _visitor(env) as sock:
        for _ in range(3):  # one request per read: the direct path
            sock.sendall(b"GET / HTTP/1.1\r\nHost: unknown.example.test\r\n\r\n")
            ((status, body),) = _responses(sock, 1)
            assert status == 530 and b"1001" in body
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: head.example.test\r\n\r\n")
        assert _responses(sock, 1) == [(200, b"hello")]
        pipelined = b"".join(
            b"GET /%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (i, host)
            for i, host in enumerate([b"head.example.test", b"unknown.example.test", b"head.example.test"])
        )
        sock.sendall(pipelined)
        statuses = [status for status, _ in _responses(sock, 3)]
        assert statuses == [200, 530, 200]


def test_an_origin_that_sends_more_than_its_response(env: Env) -> None:
    """The visitor gets the response exactly as announced (nothing of what followed it), and the origin
    connection is not reused: every request is answered, none with the leftovers of another."""
    with _visitor(env) as sock:
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: extra.example.test\r\n\r\n")
            sock.settimeout(10)
            data = b""
            while b"\r\n\r\nok" not in data:
                piece = sock.recv(65536)
                assert piece, data
                data += piece
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ") and body == b"ok"
            assert b"X-Injected" not in head and head.lower().count(b"content-length") == 1
