"""An idle edge process does not wake (edge/idle.py): its tick parks while there is nothing to keep, the
first connection wakes it (ticket key first), and a worker's reports stop while it is parked."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from originlock.edge import server as edge_server
from originlock.edge.config import EdgeConfig
from originlock.edge.idle import PARK_MAX_SECONDS, IdleGate
from originlock.edge.server import _park_seconds
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.edge.state import EdgeState
from originlock.edge.ticket_keys import ROTATION_SECONDS, ticket_key
from originlock.edge.worker_channel import WorkerReporter
from originlock.edge.worker_stats import ZERO_POOL, WorkerReport
from originlock.snapshot.model import SslMode
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head

ORIGIN = "127.0.0.23"
HOST = "idle.example.test"


def closing_origin(sock: socket.socket) -> None:
    """One answer, then the connection closes: nothing stays in the edge's pool."""
    if read_request_head(sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


@pytest.fixture()
def origin() -> Iterator[ScriptedOrigin]:
    with ScriptedOrigin(ORIGIN, free_port(), closing_origin) as scripted:
        yield scripted


def _edge(origin: ScriptedOrigin, tmp_path: Path, https: bool = False) -> EdgeThread:
    config = EdgeConfig(
        http=("127.0.0.1", free_port()),
        https=("127.0.0.1", free_port()) if https else None,
        origin_http_port=origin.sock.getsockname()[1],
        access_log=str(tmp_path / "access.log"),
    )
    snapshot = make_snapshot(TestPki(), make_route(HOST, ORIGIN, ssl_mode=SslMode.FLEXIBLE))
    return EdgeThread(config, MemorySnapshotSource(snapshot))


def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def _get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while piece := sock.recv(4096):
            data += piece
    return data


def test_an_idle_edge_parks_wakes_for_a_connection_and_parks_again(
    origin: ScriptedOrigin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks: list[float] = []
    real_tick = edge_server._tick

    def counted(state: EdgeState) -> None:
        ticks.append(time.monotonic())
        real_tick(state)

    monkeypatch.setattr(edge_server, "_tick", counted)
    with _edge(origin, tmp_path) as edge:
        assert edge.server is not None
        idle = edge.server.idle
        _until(lambda: idle.parked, timeout=3.0)
        before = len(ticks)
        time.sleep(1.5)
        assert len(ticks) == before  # parked: no tick (one a second before)
        assert _get(edge.http_port).startswith(b"HTTP/1.1 200 ")
        # The wake-up's tick, then once a second until the connection and the origin's are gone; the access
        # log line is flushed by a tick before the edge parks again.
        log = tmp_path / "access.log"
        _until(lambda: log.exists() and log.read_text().count("\n") == 1 and idle.parked, timeout=5.0)
        assert len(ticks) > before and idle.parks >= 2
        parked_at = len(ticks)
        time.sleep(1.2)
        assert len(ticks) == parked_at


def test_the_first_handshake_after_a_park_gets_the_current_ticket_key(origin: ScriptedOrigin, tmp_path: Path) -> None:
    """A rotation instant passed while the edge slept: the accept rotates the key before the handshake."""
    edge = _edge(origin, tmp_path, https=True)
    with edge:
        assert edge.server is not None and edge.server.visitor_tls is not None
        tickets = edge.server.visitor_tls.tickets
        secret = edge.config.ticket_secret
        _until(lambda: edge.server is not None and edge.server.idle.parked, timeout=3.0)

        def go_stale() -> None:  # as if the key of the previous period were still installed
            clock = tickets._clock
            tickets._clock = lambda: clock() - ROTATION_SECONDS
            tickets.rotate()
            tickets._clock = clock

        edge.call(go_stale)
        previous = ticket_key(secret, int(time.time() // ROTATION_SECONDS) - 1)
        _until(lambda: tickets.installed() == previous)
        client = ssl.create_default_context()
        client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", edge.https_port), timeout=10) as raw,
            client.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            assert tls.version() is not None
            assert tickets.installed() == ticket_key(secret, int(time.time() // ROTATION_SECONDS))


def test_an_overload_count_wakes_a_parked_edge_to_log_it(
    origin: ScriptedOrigin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="originlock.edge"), _edge(origin, tmp_path) as edge:
        assert edge.server is not None
        server = edge.server
        _until(lambda: server.idle.parked, timeout=3.0)
        parks = server.idle.parks
        edge.call(lambda: server.state.overload.count("accept"))  # an accept() that failed: no connection
        _until(lambda: "out of file descriptors" in caplog.text, timeout=3.0)
        _until(lambda: server.idle.parked and server.idle.parks > parks, timeout=3.0)


def test_the_park_lasts_until_the_next_rotation_instant_at_most_a_minute() -> None:
    hour = 7 * ROTATION_SECONDS
    assert _park_seconds(hour + ROTATION_SECONDS - 0.5) == pytest.approx(0.51)
    assert _park_seconds(hour) == PARK_MAX_SECONDS


async def test_a_parked_gate_wakes_on_time_and_runs_its_callbacks_once() -> None:
    gate = IdleGate()
    woken: list[bool] = []
    gate.on_wake.append(lambda: woken.append(True))
    gate.wake()  # not parked: nothing to do
    assert woken == []
    started = time.monotonic()
    await gate.park(0.05)
    assert 0.04 <= time.monotonic() - started < 1.0 and woken == [True] and not gate.parked
    parking = asyncio.create_task(gate.park(30))
    await asyncio.sleep(0.01)
    assert gate.parked and "parked=True" in repr(gate)
    waiter = asyncio.create_task(gate.wait_awake())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    gate.wake()
    gate.wake()
    await asyncio.wait_for(asyncio.gather(parking, waiter), 1.0)
    assert woken == [True, True] and gate.parks == 2


async def test_a_workers_reports_stop_while_its_edge_is_parked_and_unchanged_ones_are_not_sent() -> None:
    reader, writer = multiprocessing.get_context("spawn").Pipe(duplex=False)
    read_fd = reader.fileno()
    os.set_blocking(read_fd, False)

    def lines() -> int:
        count = 0
        while True:
            try:
                data = os.read(read_fd, 65536)
            except BlockingIOError:
                return count
            count += data.count(b"\n")

    reporter = await WorkerReporter.open(writer, lambda: None)
    gate = IdleGate()
    live = {("a", 200): 0}
    taken: list[float] = []

    def current() -> WorkerReport:
        taken.append(time.monotonic())
        return WorkerReport.of(live, ZERO_POOL)

    task = asyncio.create_task(reporter.run(current, interval=0.01, idle=gate))
    parking: asyncio.Task[None] | None = None
    try:
        await asyncio.sleep(0.2)
        assert lines() == 1 and len(taken) > 5  # awake: looked at every interval, sent the one report
        parking = asyncio.create_task(gate.park(30))
        await asyncio.sleep(0.05)
        looked = len(taken)
        await asyncio.sleep(0.3)
        assert len(taken) == looked  # parked: not even a look
        live[("a", 200)] = 4  # (a parked edge counts nothing; this stands for the request that woke it)
        gate.wake()
        await asyncio.sleep(0.1)
        assert lines() == 1 and len(taken) > looked
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if parking is not None:
            gate.wake()
            await parking
        await reporter.aclose(WorkerReport.of(live, ZERO_POOL), timeout=0.5)
        reader.close()
