"""``run_edge`` with ``workers=2`` fills the worker-stats book, including what a worker counted after its
last periodic report: it reports once more after its graceful shutdown."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.runtime import run_edge
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import MemorySnapshotSource, SnapshotSource
from originlock.edge.worker_stats import WorkerStatsBook
from originlock.snapshot.model import SslMode
from originlock.testing.nginx import free_port, wait_for_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head

pytestmark = pytest.mark.slow

ORIGIN = "127.0.0.22"
HOST = "r.example.test"


def keepalive_origin(sock: socket.socket) -> None:
    while read_request_head(sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def source_factory() -> SnapshotSource:
    """Module-level, hence picklable: each worker builds its own snapshot."""
    return MemorySnapshotSource(make_snapshot(TestPki(), make_route(HOST, ORIGIN, ssl_mode=SslMode.FLEXIBLE)))


def get(port: int) -> str:
    """One request on a new connection; returns the answering process's CF-Ray prefix."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while piece := sock.recv(4096):
            data += piece
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    ray = next(line for line in data.split(b"\r\n") if line.lower().startswith(b"cf-ray:"))
    return ray.split(b":", 1)[1].strip()[:8].decode()


@pytest.fixture()
def origin() -> Iterator[ScriptedOrigin]:
    with ScriptedOrigin(ORIGIN, free_port(), keepalive_origin) as scripted:
        yield scripted


def test_the_final_report_counts_every_request(origin: ScriptedOrigin) -> None:
    port = free_port()
    config = EdgeConfig(http=("127.0.0.1", port), https=None, origin_http_port=origin.sock.getsockname()[1], workers=2)
    book = WorkerStatsBook()
    loop = asyncio.new_event_loop()
    local: asyncio.Future[EdgeServer] = loop.create_future()
    # No periodic report within the test: the worker reports when it starts and when it stops, nothing else.
    edge = run_edge(config, source_factory, server_ready=local, worker_stats=book, report_interval=3600)
    task = loop.create_task(edge)
    thread = threading.Thread(target=lambda: loop.run_until_complete(asyncio.wait([task])), daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=30)
        deadline = time.monotonic() + 30
        while book.reporting() < 1:  # the worker is up (it reports once when it starts)
            assert time.monotonic() < deadline
            time.sleep(0.05)
        by_process: Counter[str] = Counter()
        while sum(by_process.values()) < 40 or len(by_process) < 2:
            assert time.monotonic() < deadline, by_process
            by_process[get(port)] += 1
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(30)
        loop.close()
    assert task.cancelled()
    state = local.result().state
    assert book.reporting() == 0  # the worker exited: its pipe ended and its slot was retired
    assert book.request_counts(state.request_counts) == {("example.test", 200): sum(by_process.values())}
    pool = book.pool_statistics(state.pool.statistics())
    assert (pool.opened, pool.reused) == (origin.connections, sum(by_process.values()) - origin.connections)
    assert (pool.idle, pool.busy) == (0, 0)  # gauges: the worker's pool is gone, the local one closed
