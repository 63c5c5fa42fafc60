"""`GET /metrics` with `originlock serve --workers 2`: requests, origin connections and WAF matches of the
worker process are counted with the serve process's own (and its WAF events are on the dashboard), and no
edge process outlives `serve`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head
from originlock.testing.serve import ServeProcess, free_port, start_serve

pytestmark = pytest.mark.slow

ZONE = "metrics.test"
#: Requests sent over fresh connections (SO_REUSEPORT spreads connections, not requests) at the least.
REQUESTS = 60


def keepalive_origin(sock: socket.socket) -> None:
    while read_request_head(sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def scrape(proc: ServeProcess) -> dict[str, float]:
    """Our series from /metrics, by their full name with labels."""
    text = httpx.get(f"{proc.api_url}/metrics").text
    series = (line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("originlock_"))
    return {name: float(value) for name, value in series}


def requests_series(zone: str, status: int) -> str:
    return f'originlock_edge_requests_total{{status="{status}",zone="{zone}"}}'


def edge_workers(pid: int) -> list[int]:
    """The spawned edge worker processes of ``pid`` (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if b"spawn_main" in _cmdline(int(child))]


def _cmdline(pid: int) -> bytes:
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until every pid has exited; returns those still running at the deadline."""
    deadline = time.monotonic() + timeout
    while (running := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running


def wait_workers(proc: ServeProcess, count: int, timeout: float = 30) -> list[int]:
    """Wait until ``count`` workers run and report (spawned workers take a moment to import and bind)."""
    deadline = time.monotonic() + timeout
    while True:
        workers = edge_workers(proc.proc.pid)
        if len(workers) == count and scrape(proc).get("originlock_edge_processes") == count + 1:
            return workers
        assert time.monotonic() < deadline, f"{workers} running; {proc.output()}"
        time.sleep(0.1)


@pytest.fixture()
def origin() -> Iterator[ScriptedOrigin]:
    with ScriptedOrigin("127.0.0.1", free_port(), keepalive_origin) as scripted:
        yield scripted


def start(tmp_path: Path, origin_port: int) -> ServeProcess:
    args = ["--workers", "2", "--access-log", "off", "--origin-monitor-interval", "0"]
    return start_serve(tmp_path / "data", extra_args=[*args, "--origin-http-port", str(origin_port)])


def add_zone(proc: ServeProcess) -> None:
    api = httpx.Client(base_url=f"{proc.api_url}/client/v4", headers={"Authorization": f"Bearer {proc.token}"})
    zone = api.post("/zones", json={"name": ZONE}).json()["result"]["id"]
    api.post(f"/zones/{zone}/dns_records", json={"type": "A", "name": "www", "content": "127.0.0.1", "proxied": True})
    api.patch(f"/zones/{zone}/settings/ssl", json={"value": "flexible"})  # plain HTTP to the scripted origin
    rule = {"action": "block", "expression": 'http.request.uri.path eq "/admin"'}
    phase = f"/zones/{zone}/rulesets/phases/http_request_firewall_custom/entrypoint"
    assert api.put(phase, json={"rules": [rule]}).status_code == 200


def test_metrics_count_the_requests_of_every_worker(tmp_path: Path, origin: ScriptedOrigin) -> None:
    proc = start(tmp_path, origin.sock.getsockname()[1])
    try:
        workers = wait_workers(proc, 1)
        add_zone(proc)
        # serve's own edge heard of those API writes by their commit hook (the writer's clock on each trace),
        # not only by the file's wake-up (whose changes carry no writer's clock).
        deadline = time.monotonic() + 10
        while not any(
            t["notified_ms"] is not None for t in httpx.get(f"{proc.api_url}/healthz/snapshot").json()["recent_changes"]
        ):
            assert time.monotonic() < deadline, httpx.get(f"{proc.api_url}/healthz/snapshot").text
            time.sleep(0.1)
        sent: Counter[tuple[str, int]] = Counter()  # (zone, status) as the edge should count it
        rays: list[str] = []
        by_process: Counter[str] = Counter()  # the CF-Ray's first 8 hex digits are per edge process
        deadline = time.monotonic() + 30
        while sent[(ZONE, 200)] < REQUESTS or len(by_process) < 2 or min(by_process.values()) < 5:
            assert time.monotonic() < deadline, f"answered by {by_process}: {sent}"
            # A client per request: a new connection each time, which SO_REUSEPORT hands to either process.
            response = httpx.get(f"http://127.0.0.1:{proc.http_port}/", headers={"Host": f"www.{ZONE}"})
            # 530 (no zone) until a process's snapshot has the record, then 200 from the origin.
            assert response.status_code in (200, 530), response.text
            sent[("" if response.status_code == 530 else ZONE, response.status_code)] += 1
            by_process[response.headers["cf-ray"][:8]] += 1
        blocked: Counter[str] = Counter()  # ray ids of requests the WAF blocked, by process
        while len(blocked) < 2 or min(blocked.values()) < 3:
            assert time.monotonic() < deadline, f"blocked by {blocked}"
            response = httpx.get(f"http://127.0.0.1:{proc.http_port}/admin", headers={"Host": f"www.{ZONE}"})
            assert response.status_code == 403, response.text
            sent[(ZONE, 403)] += 1
            blocked[response.headers["cf-ray"][:8]] += 1
            rays.append(response.headers["cf-ray"])
        to_origin = sent[(ZONE, 200)]
        expected = {requests_series(zone, status): float(count) for (zone, status), count in sent.items()}
        deadline = time.monotonic() + 10  # workers report about once a second
        while True:
            got = scrape(proc)
            counted = {name: value for name, value in got.items() if name.startswith("originlock_edge_requests")}
            # Every origin connection was dialled by one edge pool and every other request reused one; the
            # connections wait idle in the pool of the process that dialled them.
            pool = [got[f"originlock_origin_pool_{name}"] for name in ("opened_total", "reused_total")]
            pool.append(got['originlock_origin_pool_connections{state="idle"}'])
            waf = got.get(f'originlock_waf_actions_total{{action="block",zone="{ZONE}"}}')
            if (
                counted == expected
                and pool == [origin.connections, to_origin - origin.connections, origin.connections]
                and waf == len(rays)
            ):
                break
            assert time.monotonic() < deadline, f"/metrics {counted} {pool} {waf}, sent {expected} {origin.connections}"
            time.sleep(0.2)
        # The dashboard lists the WAF events of both processes (the ray ids the visitor saw).
        session = httpx.Client(base_url=proc.api_url)
        assert session.post("/dashboard/login", data={"token": proc.token}).status_code in (200, 303)
        live = session.get("/dashboard/live.json").json()
        listed = {event["ray_id"] for event in live["events"]}
        assert set(rays) <= listed, (rays, live["events"])
        assert got["originlock_edge_processes"] == 2
        assert origin.connections >= 2  # each process dialled its own
        assert proc.stop() == 0
        assert wait_gone(workers, 5) == []
    finally:
        proc.stop()


def test_a_worker_stops_when_serve_is_killed(tmp_path: Path, origin: ScriptedOrigin) -> None:
    proc = start(tmp_path, origin.sock.getsockname()[1])
    workers: list[int] = []
    try:
        workers = wait_workers(proc, 1)
        proc.stop(signal.SIGKILL)  # no SIGTERM for the workers: they see their report pipe close
        assert wait_gone(workers, 15) == [], "an edge worker outlived originlock serve"
    finally:
        proc.stop()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
