"""A visitor that sends requests and does not read the answers does not make the edge hold them all: pipelined
HTTP/1.1 requests wait while the visitor's socket is full, and every answer still arrives, in order, once it
reads. The origin is a scripted one (60 KB answers, each whole in one read: the callback-completed case)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.snapshot.model import SslMode
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head

HOST = "bp.example.test"
BODY = 60_000
REQUESTS = 200


def answer_each(sock: socket.socket) -> None:
    n = 0
    while read_request_head(sock):
        n += 1
        body = (b"%08d" % n) * (BODY // 8)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.fixture()
def edge() -> Iterator[EdgeThread]:
    port = free_port()
    snapshot = make_snapshot(TestPki(), make_route(HOST, "127.0.0.41", ssl_mode=SslMode.FLEXIBLE))
    config = EdgeConfig(http=("127.0.0.1", 0), https=None, origin_http_port=port, idle_timeout=30.0)
    with ScriptedOrigin("127.0.0.41", port, answer_each), EdgeThread(config, MemorySnapshotSource(snapshot)) as edge:
        yield edge


def _held(edge: EdgeThread) -> int:
    """Bytes the edge holds for its visitors (transport write buffers)."""
    assert edge.server is not None
    held = 0
    for conn in list(edge.server.state.visitors.open):
        transport = getattr(conn, "transport", None)
        if transport is not None:
            held += transport.get_write_buffer_size()
    return held


def test_pipelined_requests_wait_for_a_visitor_that_does_not_read(edge: EdgeThread) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", edge.http_port))
    sock.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (i, HOST.encode()) for i in range(REQUESTS)))
    time.sleep(1.5)  # the edge answers what fits, then waits
    peak = _held(edge)
    # Without the wait, all 200 answers (12 MB) would be queued in the edge; with it, about one answer past
    # the transport's high-water mark.
    assert peak < 1_000_000, peak
    sock.settimeout(10)
    bodies = _read_answers(sock, REQUESTS)
    assert all(len(body) == BODY for body in bodies)
    sock.close()


def _read_answers(sock: socket.socket, count: int) -> list[bytes]:
    data, bodies = b"", []
    while len(bodies) < count:
        while b"\r\n\r\n" not in data:
            piece = sock.recv(1 << 20)
            assert piece, f"closed after {len(bodies)} answers"
            data += piece
        head, _, data = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head[:100]
        length = int(
            next(
                v
                for n, _, v in (line.partition(b": ") for line in head.split(b"\r\n"))
                if n.lower() == b"content-length"
            )
        )
        while len(data) < length:
            piece = sock.recv(1 << 20)
            assert piece, f"closed in answer {len(bodies) + 1}"
            data += piece
        bodies.append(data[:length])
        data = data[length:]
    return bodies
