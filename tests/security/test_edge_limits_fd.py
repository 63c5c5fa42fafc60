"""Issue 10 item 10: a real ``originlock serve`` whose open-files limit is lowered (``prlimit``) and which is
flooded with connections on its API and edge ports keeps answering the connections it has, logs one line
per kind of overload instead of a traceback per failed ``accept()`` (163,548 in 10 s in the report), and
serves new connections again once the flood is gone. Also: ``--backlog`` reaches the edge listeners."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve

pytestmark = pytest.mark.slow

#: Connections opened on each of the API and edge HTTP ports: far beyond the lowered limit.
FLOOD = 300


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    process = start_serve(
        tmp_path_factory.mktemp("fd") / "data", extra_args=["--access-log", "off", "--backlog", "1500"]
    )
    try:
        yield process
    finally:
        process.stop()


def _ask(sock: socket.socket) -> bytes:
    """One request for a hostname no zone has: the edge answers 530 itself (no origin involved)."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n")
    data = b""
    while b"</html>" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def _api_port(serve: ServeProcess) -> int:
    return int(serve.api_url.rsplit(":", 1)[1])


def test_backlog_flag_reaches_the_edge_listeners(serve: ServeProcess) -> None:
    ss = require_executable("ss")
    for port in (serve.http_port, serve.https_port):
        out = subprocess.run([ss, "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
        assert int(out.split()[2]) == 1500, out


def test_fd_exhaustion_sheds_new_connections_logs_little_and_recovers(serve: ServeProcess) -> None:
    pid = serve.proc.pid
    kept = socket.create_connection(("127.0.0.1", serve.http_port), timeout=10)
    assert _ask(kept).startswith(b"HTTP/1.1 530 ")
    original = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    limit = len(os.listdir(f"/proc/{pid}/fd")) + 60
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, original[1]))
    time.sleep(1.5)  # the edge re-reads the limit every second
    log_before = serve.log_path.stat().st_size
    flood: list[socket.socket] = []
    try:
        for port in [_api_port(serve)] * FLOOD + [serve.http_port] * FLOOD:
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            flood.append(sock)
        time.sleep(3)
        assert len(os.listdir(f"/proc/{pid}/fd")) >= limit - 2  # the flood did reach the limit
        # The connection the edge already had is still served.
        assert _ask(kept).startswith(b"HTTP/1.1 530 ")
        log = serve.log_path.read_text()[log_before:] if serve.log_path.stat().st_size > log_before else ""
        assert "Traceback" not in log
        assert len(log) < 2000, log[:2000]
        assert log.count("new connection(s) refused") <= 1 and log.count("answered 503 and closed") <= 1
    finally:
        for sock in flood:
            sock.close()
        kept.close()
    # Once the flood is gone, both the API and the edge take new connections again, under the lowered limit.
    deadline = time.monotonic() + 20
    api_ok = edge_ok = False
    while time.monotonic() < deadline and not (api_ok and edge_ok):
        try:
            api_ok = api_ok or httpx.get(f"{serve.api_url}/healthz", timeout=1).status_code == 200
            if not edge_ok:
                with socket.create_connection(("127.0.0.1", serve.http_port), timeout=1) as fresh:
                    fresh.settimeout(1)
                    edge_ok = _ask(fresh).startswith(b"HTTP/1.1 530 ")
        except (OSError, httpx.HTTPError):
            time.sleep(0.2)
    assert api_ok and edge_ok
    resource.prlimit(pid, resource.RLIMIT_NOFILE, original)
    out = serve.output()
    # One line per 10 s interval (none under uvloop, whose libuv closes the newest connection silently).
    assert out.count("out of file descriptors") <= 2 and out.count("at the open-files limit") <= 2, out[-3000:]
    assert Path(serve.log_path).stat().st_size < 10_000
