"""``--workers 2``: two processes share the listener through SO_REUSEPORT, each with its own source."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.runtime import run_edge
from originlock.edge.snapshots import MemorySnapshotSource, SnapshotSource
from originlock.testing.nginx import free_port, wait_for_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head

pytestmark = pytest.mark.slow


def pid_origin(sock: socket.socket) -> None:
    while head := read_request_head(sock):
        # The edge's CF-Ray prefix is per process: echo it so the test can count edge processes.
        ray = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"cf-ray"))
        body = ray[:8] + b"\n"
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def source_factory() -> SnapshotSource:
    """Module-level, hence picklable: each worker builds its own snapshot."""
    return MemorySnapshotSource(make_snapshot(TestPki(), make_route("w.example.test", "127.0.0.21")))


@pytest.fixture()
def origin_port() -> Iterator[int]:
    port = free_port()
    with ScriptedOrigin("127.0.0.21", port, pid_origin):
        yield port


def test_two_workers_share_the_listener(origin_port: int) -> None:
    port = free_port()
    config = EdgeConfig(http=("127.0.0.1", port), https=None, origin_http_port=origin_port, workers=2)
    loop = asyncio.new_event_loop()
    task = loop.create_task(run_edge(config, source_factory))
    thread = threading.Thread(target=lambda: loop.run_until_complete(asyncio.wait([task])), daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=30)
        prefixes = set()
        deadline = time.monotonic() + 20  # the spawned worker needs a moment to import and bind
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: w.example.test\r\nConnection: close\r\n\r\n")
                data = b""
                while piece := sock.recv(4096):
                    data += piece
            assert data.startswith(b"HTTP/1.1 200 "), data[:100]
            prefixes.add(data.rsplit(b"\r\n\r\n", 1)[1])
            if len(prefixes) == 2:
                break
        assert len(prefixes) == 2
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(30)
        loop.close()
