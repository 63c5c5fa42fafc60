"""The access log through `originlock serve`: lines reach the file within about a second while serving,
and the lines still buffered are written at shutdown; the sink writes whole batches, never per request."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from originlock.edge.access_log import MAX_PENDING, AccessLog
from originlock.testing.serve import start_serve

pytestmark = pytest.mark.slow


def _get(port: int, host: str, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while piece := sock.recv(65536):
            data += piece
    return data


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_lines_are_written_within_a_second_and_at_shutdown(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    proc = start_serve(tmp_path / "data", extra_args=["--access-log", str(log)])
    try:
        assert _get(proc.http_port, "nozone.test", "/first").startswith(b"HTTP/1.1 ")
        sent = time.monotonic()
        while not any(entry["path"] == "/first" for entry in _lines(log)):
            assert time.monotonic() - sent < 2.5, "the line was not written within the flush tick"
            time.sleep(0.05)
        # Sent right before SIGTERM: still in memory, unless shutdown writes it.
        assert _get(proc.http_port, "nozone.test", "/last").startswith(b"HTTP/1.1 ")
    finally:
        assert proc.stop() == 0
    entries = _lines(log)
    last = [entry for entry in entries if entry["path"] == "/last"]
    assert len(last) == 1, entries
    assert last[0]["host"] == "nozone.test" and last[0]["method"] == "GET" and last[0]["zone"] == ""
    assert oct(log.stat().st_mode & 0o777) == "0o640"


def test_batches_are_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes | memoryview) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    path = tmp_path / "a.log"
    sink = AccessLog(str(path))
    for i in range(MAX_PENDING + 10):
        sink.write(f'{{"n":{i}}}')
    assert len(writes) == 1  # the size limit wrote one batch; the 10 after it wait for the tick
    sink.flush()
    sink.close()
    assert len(writes) == 2
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == list(range(MAX_PENDING + 10))
