"""A request whose exchange dialled a new origin connection (an origin that closes after each response, as
with nginx's ``keepalive_timeout 0``): once the head is written the task hands the response to the origin
connection's callbacks, as the pooled path does (edge/exchange.py), so no task waits for it; the answers,
their order, keep-alive, the retry and the visitor going away stay as they were. On both loops."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any

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

#: How long the late origin waits between reading a request and answering it.
LATE = 0.6


class Late:
    """Answers each connection's one request ``LATE`` seconds after reading it, then closes; says when."""

    def __init__(self) -> None:
        self.heard = threading.Event()
        self.answering = threading.Event()

    def __call__(self, sock: socket.socket) -> None:
        read_request_head(sock)
        self.heard.set()
        time.sleep(LATE)
        self.answering.set()
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nlate")


def by_path(sock: socket.socket) -> None:
    """One request per connection, answered with its path as the body, then closed."""
    head = read_request_head(sock)
    path = head.split(b" ", 2)[1] if head else b"?"
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(path), path))


class DiesTwice:
    """The first connection answers one request keep-alive and closes at the next without a byte (it died
    idle); every later connection closes at its request without a byte."""

    def __init__(self) -> None:
        self.connections = 0

    def __call__(self, sock: socket.socket) -> None:
        self.connections += 1
        read_request_head(sock)
        if self.connections == 1:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            read_request_head(sock)


class Env:
    def __init__(self, edge: EdgeThread, late: Late, dies: DiesTwice) -> None:
        self.edge = edge
        self.late = late
        self.dies = dies

    def visitor(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.edge.http_port), timeout=10)


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    pki = TestPki()
    port = free_port()
    late, dies = Late(), DiesTwice()
    origins = [
        ScriptedOrigin("127.0.0.40", port, late),
        ScriptedOrigin("127.0.0.41", port, by_path),
        ScriptedOrigin("127.0.0.42", port, dies),
    ]
    flex = SslMode.FLEXIBLE
    snapshot = make_snapshot(
        pki,
        make_route("late.example.test", "127.0.0.40", ssl_mode=flex),
        make_route("path.example.test", "127.0.0.41", ssl_mode=flex),
        make_route("dies.example.test", "127.0.0.42", ssl_mode=flex),
    )
    config = EdgeConfig(
        http=("127.0.0.1", 0),
        https=None,
        origin_http_port=port,
        origin_timeouts=OriginTimeouts(connect=1.0, handshake=1.0, read=3.0, write=1.0),
        loop=request.param,
    )
    for origin in origins:
        origin.__enter__()
    try:
        with EdgeThread(config, MemorySnapshotSource(snapshot)) as edge:
            yield Env(edge, late, dies)
    finally:
        for origin in origins:
            origin.close()


def _read_response(sock: socket.socket, data: bytes = b"") -> tuple[int, bytes, bytes]:
    """One Content-Length response from ``sock`` (after ``data``): status, body, what came after it."""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, data
        data += piece
    head, _, data = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
    length = int(match.group(1)) if match else 0
    while len(data) < length:
        piece = sock.recv(65536)
        assert piece, data
        data += piece
    return int(head.split(b" ", 2)[1]), data[:length], data[length:]


def _is_exchange(coro: object) -> bool:
    """An HTTP/1.1 connection's exchange task (``Http1Connection._run``; compiled, mypyc's generator class)."""
    name = str(getattr(coro, "__qualname__", "")) or type(coro).__name__
    return "_run" in name and "Http1Connection" in name


class TaskLog:
    """The edge loop's exchange tasks made while installed (its task factory)."""

    def __init__(self, edge: EdgeThread) -> None:
        self.edge = edge
        self.tasks: list[asyncio.Task[Any]] = []

    def _factory(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kw: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kw)
        if _is_exchange(coro):
            self.tasks.append(task)
        return task

    def _set(self, factory: Any) -> None:
        done = threading.Event()

        def install() -> None:
            asyncio.get_running_loop().set_task_factory(factory)
            done.set()

        self.edge.call(install)
        assert done.wait(5)

    def __enter__(self) -> TaskLog:
        self._set(self._factory)
        return self

    def __exit__(self, *exc: object) -> None:
        self._set(None)


def test_no_task_waits_for_a_dialled_connections_response(env: Env) -> None:
    late = env.late
    with env.visitor() as sock, TaskLog(env.edge) as log:
        for _ in range(2):  # keep-alive: the callbacks finish the first request and serve the next
            late.heard.clear()
            late.answering.clear()
            before = len(log.tasks)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: late.example.test\r\n\r\n")
            assert late.heard.wait(5)
            deadline = time.monotonic() + LATE / 2
            while not all(task.done() for task in log.tasks[before:]) and time.monotonic() < deadline:
                time.sleep(0.01)
            tasks = log.tasks[before:]
            # One task, for the dial; it ended with the head written, before the origin answered.
            assert len(tasks) == 1
            assert tasks[0].done() and not late.answering.is_set()
            assert _read_response(sock)[:2] == (200, b"late")


def test_dialled_requests_pipelined_are_answered_in_order(env: Env) -> None:
    raw = (
        b"GET /1 HTTP/1.1\r\nHost: path.example.test\r\n\r\n"
        b"GET /2 HTTP/1.1\r\nHost: unknown.test\r\n\r\n"
        b"GET /3 HTTP/1.1\r\nHost: path.example.test\r\n\r\n"
        b"GET /4 HTTP/1.1\r\nHost: path.example.test\r\nConnection: close\r\n\r\n"
    )
    with env.visitor() as sock:
        sock.sendall(raw)
        answers, rest = [], b""
        for _ in range(4):
            status, body, rest = _read_response(sock, rest)
            answers.append((status, body if status == 200 else b""))
        assert answers == [(200, b"/1"), (530, b""), (200, b"/3"), (200, b"/4")]
        assert sock.recv(10) == b""  # Connection: close honoured after the callbacks answered


def test_a_retry_that_fails_again_is_520_after_two_connections(env: Env) -> None:
    with env.visitor() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: dies.example.test\r\n\r\n")
        assert _read_response(sock)[:2] == (200, b"ok")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: dies.example.test\r\n\r\n")
        assert _read_response(sock)[0] == 520
    assert env.dies.connections == 2  # the reused one, then one retry on a fresh one: no third


def test_a_visitor_gone_while_its_dialled_exchange_waits(env: Env) -> None:
    late = env.late
    late.heard.clear()
    with env.visitor() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: late.example.test\r\n\r\n")
        assert late.heard.wait(5)
    time.sleep(LATE + 0.2)  # the origin answers a visitor that left
    with env.visitor() as sock:
        sock.sendall(b"GET /again HTTP/1.1\r\nHost: path.example.test\r\n\r\n")
        assert _read_response(sock)[:2] == (200, b"/again")
