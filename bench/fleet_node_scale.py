"""One ``originlock edge`` node at fleet scale (issue 15): cold start, latency during changes, idle CPU.

Seeds ``--zones`` x ``--records`` proxied hostnames with one client certificate per zone straight into a
PostgreSQL schema (bench/fleet_snapshot_scale.py's seed), turns ``always_use_https`` on for the first
zone (its hostnames answer ``301`` from the edge, no origin involved), then measures on a real process:

- cold start: from ``Popen`` to the first ``301`` for a seeded hostname, ``--cold-runs`` times, without a
  last-known-good copy in the data dir (a new node) and with one (a restart); the node's log has its own
  stage times;
- edge latency: one kept-alive connection sending ``GET /`` every ``--interval`` ms for ``--seconds`` s,
  first idle, then while ``--rate`` single-zone changes per second stream in through ``Store.write`` (each
  announced by NOTIFY, each recompiled by the node), then while four writes the store cannot scope make the
  node rebuild everything: p50 / p99 / p99.9 / max of each phase;
- idle CPU: the node's user + system CPU seconds over ``--seconds`` s without changes (``/proc``).

The nodes run this checkout's source tree; its bytecode is compiled first (``--bytecode compiled``, as
``pip install`` compiles an installed package's), so that a start measures what a deployed node does.

    python bench/fleet_node_scale.py --zones 10000 --records 10
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, _SRC)
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["PYTHONPATH"] = os.pathsep.join([_SRC, *filter(None, [os.environ.get("PYTHONPATH")])])

from fleet_snapshot_scale import seed  # noqa: E402

from originlock.server.bootstrap import MASTER_KEY_ENV, bootstrap  # noqa: E402
from originlock.store import settings  # noqa: E402
from originlock.store.deadline import SNAPSHOT_TIMEOUTS  # noqa: E402
from originlock.testing.serve import free_port  # noqa: E402

PG = os.environ.get("ORIGINLOCK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PROBE = "h0.z0.bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> str:
    return (
        f"n {len(values)}, p50 {statistics.median(values):.2f} ms, p99 {percentile(values, 0.99):.2f} ms, "
        f"p99.9 {percentile(values, 0.999):.2f} ms, max {max(values):.2f} ms"
    )


class Node:
    def __init__(self, data_dir: Path, store: str, env: dict[str, str]) -> None:
        self.http_port, health = free_port(), free_port()
        self.health_port = health
        self.log = data_dir.parent / f"{data_dir.name}-{self.http_port}.log"
        args = [
            sys.executable, "-m", "originlock", "edge", "--store", store, "--data-dir", str(data_dir),
            "--health", f"127.0.0.1:{health}", "--http", f"127.0.0.1:{self.http_port}",
            "--https", f"127.0.0.1:{free_port()}", "--workers", "1",
        ]  # fmt: skip
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            args,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        )

    def wait_serving(self, timeout: float = 120) -> tuple[float, float]:
        """Wall-clock seconds from Popen to the first 301, and the CPU seconds the node used until then."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edge exited: {self.log.read_text()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2)
                conn.request("GET", "/", headers={"Host": PROBE})
                status = conn.getresponse().status
                conn.close()
                if status == 301:
                    return time.perf_counter() - self.started, self.cpu_seconds()
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"edge did not serve in {timeout} s: {self.log.read_text()}")

    def wait_store(self, timeout: float = 120) -> float:
        """Wall-clock seconds from Popen until the node serves the store's snapshot (``from_disk`` false on
        ``/healthz/snapshot``): a restart serves its last-known-good copy first, then compiles from the store."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.health_port, timeout=2)
                conn.request("GET", "/healthz/snapshot")
                body = json.loads(conn.getresponse().read())
                conn.close()
                if body.get("serving") and body.get("from_disk") is False:
                    return time.perf_counter() - self.started
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"edge did not serve the store's snapshot in {timeout} s: {self.log.read_text()}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def latencies(port: int, seconds: float, interval: float, during: threading.Event | None = None) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    out = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        conn.request("GET", "/", headers={"Host": PROBE})
        response = conn.getresponse()
        response.read()
        out.append((time.perf_counter() - started) * 1000)
        assert response.status == 301, response.status
        time.sleep(interval / 1000)
    conn.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zones", type=int, default=10000)
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--interval", type=float, default=2.0, help="ms between the latency probe's requests")
    parser.add_argument("--rate", type=float, default=10.0, help="single-zone changes per second")
    parser.add_argument("--keep", help="reuse this schema (seeded by an earlier --keep run)")
    parser.add_argument(
        "--bytecode",
        choices=("compiled", "source"),
        default="compiled",
        help="compiled (default): originlock's bytecode is compiled first, as `pip install` does, so a start "
        "loads it; source: as the environment has it (with PYTHONDONTWRITEBYTECODE and no __pycache__, every "
        "start compiles originlock's ~0.25 CPU-s of source again)",
    )
    args = parser.parse_args()
    if args.bytecode == "compiled":
        # Into src/originlock/**/__pycache__ (ignored by git), where the nodes' imports look for it.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(_SRC) / "originlock")], check=True)

    schema = args.keep or f"ol_nodescale_{secrets.token_hex(4)}"
    store_url = f"{PG}?schema={schema}"
    key = os.environ.get("FLEET_BENCH_KEY") or secrets.token_hex(32)
    env = {MASTER_KEY_ENV: key}
    os.environ[MASTER_KEY_ENV] = key
    tmp = Path(tempfile.mkdtemp(prefix="fleet-node-"))
    deployment = bootstrap(tmp / "boot", store_url)
    store = deployment.store
    writer = store.companion(SNAPSHOT_TIMEOUTS)
    nodes: list[Node] = []
    try:
        from sqlalchemy import select, text

        from originlock.store import schema as tables

        with writer.read() as conn:
            ids = [
                r.id for r in conn.execute(select(tables.zones.c.id, tables.zones.c.name)) if r.name.endswith(".bench")
            ]
        if not ids:
            started = time.perf_counter()
            ids = seed(writer, deployment.account_id, args.zones, args.records)
            with writer.write() as conn:
                settings.set_setting(conn, ids[0], "always_use_https", "on")
            print(f"seeded {len(ids)} zones x {args.records} hostnames in {time.perf_counter() - started:.1f} s")
        with writer.read() as conn:
            probe_zone = conn.execute(select(tables.zones.c.id).where(tables.zones.c.name == "z0.bench")).scalar_one()
        others = [z for z in ids if z != probe_zone]

        cold_new, cold_restart, restart_store = [], [], []
        for run in range(args.cold_runs):
            node = Node(tmp / f"new{run}", store_url, env)
            cold_new.append(node.wait_serving())
            time.sleep(3)  # lets it write its last-known-good copy
            node.stop()
            node = Node(tmp / f"new{run}", store_url, env)
            cold_restart.append(node.wait_serving())
            restart_store.append(node.wait_store())
            stages = [line for line in node.log.read_text().splitlines() if "generation" in line]
            node.stop()
            print(f"restart {run}: " + " | ".join(stages))
        print(f"load average at the end of the cold starts: {os.getloadavg()[0]:.2f}")
        for label, runs in (("new node", cold_new), ("restart with last-known-good", cold_restart)):
            walls = ", ".join(f"{wall:.2f}" for wall, _ in runs)
            cpus = ", ".join(f"{cpu:.2f}" for _, cpu in runs)
            print(f"cold start to a serving edge, {label}: {walls} s (node CPU until then: {cpus} s)")
        print(
            "restart with last-known-good, serving the store's snapshot after: "
            + ", ".join(f"{wall:.2f}" for wall in restart_store)
            + " s"
        )

        node = Node(tmp / "steady", store_url, env)
        nodes.append(node)
        node.wait_serving()
        time.sleep(5)  # past the first save and poll
        before = node.cpu_seconds()
        idle = latencies(node.http_port, args.seconds, args.interval)
        print(f"edge latency, no changes: {summary(idle)}")
        busy_cpu = node.cpu_seconds() - before

        stop = threading.Event()
        applied = [0]

        def changes() -> None:
            rng = random.Random(7)
            n = 0
            while not stop.is_set():
                zone = rng.choice(others)
                with writer.write() as conn:
                    settings.set_setting(conn, zone, "always_use_https", "on" if n % 2 else "off")
                n += 1
                applied[0] = n
                stop.wait(1 / args.rate)

        thread = threading.Thread(target=changes, daemon=True)
        thread.start()
        busy = latencies(node.http_port, args.seconds, args.interval)
        stop.set()
        thread.join()
        print(f"edge latency, {args.rate:g} single-zone changes/s ({applied[0]} changes): {summary(busy)}")

        # A write the store cannot scope to zones (raw SQL here; a CA change in practice) rebuilds everything.
        stop.clear()
        rebuilt = [0]

        def whole_rebuilds() -> None:
            while not stop.wait(args.seconds / 4):
                with writer.write() as conn:
                    conn.execute(text("UPDATE zones SET modified_on = modified_on WHERE id = :z"), {"z": probe_zone})
                rebuilt[0] += 1

        thread = threading.Thread(target=whole_rebuilds, daemon=True)
        thread.start()
        full = latencies(node.http_port, args.seconds, args.interval)
        stop.set()
        thread.join()
        print(f"edge latency, {rebuilt[0]} whole rebuilds in {args.seconds:g} s: {summary(full)}")
        time.sleep(3)
        before = node.cpu_seconds()
        time.sleep(args.seconds)
        idle_cpu = node.cpu_seconds() - before
        print(
            f"node CPU: idle {idle_cpu / args.seconds * 60:.3f} CPU-s/min "
            f"(while answering the idle latency probe: {busy_cpu / args.seconds * 60:.2f} CPU-s/min)"
        )
    finally:
        for node in nodes:
            node.stop()
        writer.close()
        store.close()
        if not args.keep:
            import psycopg

            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
