"""HTTP/2 streams through the one exchange, at the edge's level: a body without a length is re-chunked for the
HTTP/1.1 origin, a visitor's reset stops the exchange and leaves the connection serving, and a graceful
shutdown sends GOAWAY and lets the open stream finish. The origin is a scripted one (it stalls on purpose)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ResponseReceived, StreamEnded
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.origin.connector import OriginTimeouts
from originlock.snapshot.model import SslMode
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head

HOST = "h2.example.test"


@dataclass
class Seen:
    heads: list[bytes]
    bodies: list[bytes]
    #: For each ``/slow`` request: whether the edge had closed the connection when the origin answered.
    slow_closed: list[bool] = field(default_factory=list)


def _read_chunked(sock: socket.socket, data: bytes) -> bytes:
    """The rest of a chunked body (``data`` is what came after the head), with its framing as sent."""
    while not data.endswith(b"0\r\n\r\n"):
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def origin_handler(seen: Seen) -> Callable[[socket.socket], None]:
    def handle(sock: socket.socket) -> None:
        while True:
            head = read_request_head(sock)
            if not head:
                return
            head, _, rest = head.partition(b"\r\n\r\n")
            seen.heads.append(head)
            if b"transfer-encoding: chunked" in head.lower():
                seen.bodies.append(_read_chunked(sock, rest))
            if head.startswith(b"GET /slow"):
                time.sleep(1.0)
                seen.slow_closed.append(_closed_by_peer(sock))
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    return handle


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@dataclass
class Env:
    edge: EdgeThread
    seen: Seen

    def connect(self) -> tuple[ssl.SSLSocket, H2Connection]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", self.edge.https_port), 5)
        sock = context.wrap_socket(raw, server_hostname=HOST)
        assert sock.selected_alpn_protocol() == "h2"
        sock.settimeout(5)
        conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        return sock, conn


def _headers(path: str, method: str = "GET") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "https"), (":authority", HOST), (":path", path)]


def _events_until(sock: ssl.SSLSocket, conn: H2Connection, done: object, timeout: float = 8.0) -> list[object]:
    """Events until ``done(events)`` is true, the connection closes, or ``timeout``."""
    events: list[object] = []
    deadline = time.monotonic() + timeout
    while not done(events) and time.monotonic() < deadline:  # type: ignore[operator]
        try:
            data = sock.recv(65536)
        except (TimeoutError, OSError):
            break
        if not data:
            break
        events.extend(conn.receive_data(data))
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
    return events


def _ended(stream_id: int) -> object:
    return lambda events: any(isinstance(e, StreamEnded) and e.stream_id == stream_id for e in events)


@pytest.fixture()
def env() -> Iterator[Env]:
    port = free_port()
    seen = Seen([], [])
    snapshot = make_snapshot(TestPki(), make_route(HOST, "127.0.0.40", ssl_mode=SslMode.FLEXIBLE))
    config = EdgeConfig(
        http=None,
        https=("127.0.0.1", 0),
        origin_http_port=port,
        origin_timeouts=OriginTimeouts(connect=2.0, handshake=2.0, read=5.0, write=2.0),
        shutdown_grace=5.0,
    )
    with (
        ScriptedOrigin("127.0.0.40", port, origin_handler(seen)),
        EdgeThread(config, MemorySnapshotSource(snapshot)) as edge,
    ):
        yield Env(edge, seen)


def test_a_body_without_length_is_rechunked_for_the_origin(env: Env) -> None:
    sock, conn = env.connect()
    conn.send_headers(1, _headers("/upload", "POST"))
    conn.send_data(1, b"abc")
    conn.send_data(1, b"defgh", end_stream=True)
    sock.sendall(conn.data_to_send())
    events = _events_until(sock, conn, _ended(1))
    statuses = [dict(e.headers)[":status"] for e in events if isinstance(e, ResponseReceived)]
    assert statuses == ["200"]
    assert env.seen.bodies, env.seen.heads
    body = env.seen.bodies[-1]
    assert body.endswith(b"0\r\n\r\n") and b"abc" in body and b"defgh" in body
    sock.close()


def _raw(sock: ssl.SSLSocket, seconds: float) -> bytes:
    """Everything the edge sends for ``seconds`` (or until it closes)."""
    received = b""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            piece = sock.recv(65536)
        except (TimeoutError, OSError):
            continue
        if not piece:
            break
        received += piece
    return received


def test_a_reset_stream_stops_its_exchange_and_the_connection_goes_on(env: Env) -> None:
    """Read as raw frames: h2 as a client would quietly drop frames for a stream it reset."""
    sock, conn = env.connect()
    conn.send_headers(1, _headers("/slow"), end_stream=True)
    sock.sendall(conn.data_to_send())
    time.sleep(0.2)  # the edge has forwarded it: the origin is stalling (1 s)
    conn.reset_stream(1)
    conn.send_headers(3, _headers("/after"), end_stream=True)
    sock.sendall(conn.data_to_send())
    frames = _frames(_raw(sock, 2.0))  # past the stalled origin's answer
    kinds = [(type(f).__name__, f.stream_id) for f in frames]
    assert not [f for f in frames if f.stream_id == 1], kinds  # nothing more for the reset stream
    assert any(isinstance(f, HeadersFrame) and f.stream_id == 3 for f in frames), kinds
    assert b"".join(f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == 3) == b"ok"
    assert not [f for f in frames if isinstance(f, GoAwayFrame)], kinds
    sock.close()


def test_a_reset_stream_closes_its_dialled_origin_connection(env: Env) -> None:
    """An HTTP/2 stream cancels its exchange's task when reset (the task kept the dialled connection rather
    than handing its response to callbacks, as HTTP/1.1 does): the origin connection is closed, not read."""
    sock, conn = env.connect()
    conn.send_headers(1, _headers("/slow"), end_stream=True)
    sock.sendall(conn.data_to_send())
    time.sleep(0.2)  # the edge dialled and forwarded it: the origin is stalling (1 s)
    conn.reset_stream(1)
    sock.sendall(conn.data_to_send())
    deadline = time.monotonic() + 3
    while not env.seen.slow_closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert env.seen.slow_closed == [True]
    sock.close()


def _frames(data: bytes) -> list[Frame]:
    frames = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames


def test_graceful_shutdown_sends_goaway_and_the_open_stream_finishes(env: Env) -> None:
    """Read as raw frames: h2's client state machine stops at a GOAWAY, even a graceful one."""
    sock, conn = env.connect()
    conn.send_headers(1, _headers("/slow"), end_stream=True)
    sock.sendall(conn.data_to_send())
    time.sleep(0.2)
    stopper = threading.Thread(target=env.edge.stop)
    stopper.start()
    received = b""
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        try:
            piece = sock.recv(65536)
        except (TimeoutError, OSError):
            break
        if not piece:
            break  # the edge closed the connection once the stream was done
        received += piece
    stopper.join(10)
    frames = _frames(received)
    kinds = [(type(f).__name__, f.stream_id) for f in frames]
    goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert goaway and goaway[0].error_code == 0 and goaway[0].last_stream_id == 1, kinds
    after = frames[frames.index(goaway[0]) :]
    assert any(isinstance(f, HeadersFrame) and f.stream_id == 1 for f in after), kinds
    data = [f for f in after if isinstance(f, DataFrame) and f.stream_id == 1]
    assert b"".join(f.data for f in data) == b"ok" and "END_STREAM" in data[-1].flags, kinds
    assert not [f for f in frames if isinstance(f, RstStreamFrame)], kinds
    sock.close()
