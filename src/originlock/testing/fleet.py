"""`originlock edge` as a real subprocess, and a load generator counting failed requests, for fleet tests."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from originlock.testing.node_process import NodeProcess, launch
from originlock.testing.ports import free_port

__all__ = ["EdgeProcess", "Load", "edge_status", "start_edge", "until"]


def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait until ``check()`` holds; the seconds it took. Fails the test naming ``what`` after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


def edge_status(port: int, host: str) -> int:
    """The status of ``GET /`` for ``host`` on a new plain-HTTP connection to an edge."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host})
        return conn.getresponse().status
    finally:
        conn.close()


@dataclass
class EdgeProcess(NodeProcess):
    http_port: int
    health_url: str

    def snapshot(self) -> dict[str, object]:
        body: dict[str, object] = httpx.get(f"{self.health_url}/healthz/snapshot", timeout=2).json()
        return body


def start_edge(
    data_dir: Path, store: str, env: dict[str, str] | None = None, extra_args: list[str] | None = None
) -> EdgeProcess:
    """Start ``originlock edge`` and wait until its health listener answers (the edge listens by then)."""
    health, http_port, https_port = free_port(), free_port(), free_port()
    log_path = data_dir.parent / f"{data_dir.name}-edge-{health}.log"
    args = [
        "--store", store, "--data-dir", str(data_dir),
        "--health", f"127.0.0.1:{health}", "--http", f"127.0.0.1:{http_port}", "--https", f"127.0.0.1:{https_port}",
        "--workers", "1", *(extra_args or []),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{health}"
    proc = launch("edge", args, log_path, url, env)
    return EdgeProcess(proc, data_dir, log_path, http_port, url)


@dataclass
class Load:
    """Threads sending ``GET /`` with ``host`` to each port over kept-alive connections, counting answers."""

    host: str
    ports: list[int]
    #: Answers that count as served (a redirect configured mid-test is an answer, not a failure).
    served: frozenset[int] = frozenset({200, 301})
    ok: dict[int, int] = field(default_factory=dict)
    failed: dict[int, list[str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for port in self.ports:
            self.ok[port], self.failed[port] = 0, []
            thread = threading.Thread(target=self._run, args=(port,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        while not self._stop.is_set():
            try:
                conn.request("GET", "/", headers={"Host": self.host})
                response = conn.getresponse()
                response.read()
                if response.status in self.served:
                    self.ok[port] += 1
                else:
                    self.failed[port].append(str(response.status))
            except (OSError, http.client.HTTPException) as exc:
                self.failed[port].append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                time.sleep(0.05)
            time.sleep(0.005)
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
