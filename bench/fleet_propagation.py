"""How long a change through one node's API takes to be served by every node's edge (issue 15).

Starts N ``originlock serve`` nodes on one PostgreSQL schema, makes one zone with a proxied hostname,
then flips the zone's ``always_use_https`` through node ``i % N``'s API, ``--changes`` times. One
thread per node polls that node's edge over a kept-alive HTTP/1.1 connection (``301`` when the setting
is on, anything else when off) and records when it first shows the new state. Reports the latency from
the API request's start (and from its response) to the *last* node showing it: p50 / p99 / max.

Optionally seeds ``--zones`` x ``--records`` more hostnames straight into the store first, so the same
measure can be taken on a large snapshot (see bench/fleet_snapshot_scale.py for compile times).

    python bench/fleet_propagation.py --nodes 3 --changes 100
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

_SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, _SRC)
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The nodes are subprocesses: they must run this checkout too, not an installed copy.
os.environ["PYTHONPATH"] = os.pathsep.join([_SRC, *filter(None, [os.environ.get("PYTHONPATH")])])

from originlock.testing.serve import ServeProcess, start_serve  # noqa: E402

PG = os.environ.get("ORIGINLOCK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
HOST = "app.propagation.test"


class Watcher(threading.Thread):
    """Polls one edge; ``seen[n]`` is when change ``n``'s state was first observed."""

    def __init__(self, node: ServeProcess) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.expect: tuple[int, bool] | None = None
        self.seen: dict[int, float] = {}
        self.stop = False

    def _state(self, conn: http.client.HTTPConnection) -> bool:
        conn.request("GET", "/", headers={"Host": HOST})
        response = conn.getresponse()
        response.read()
        return response.status == 301

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.node.http_port, timeout=5)
        while not self.stop:
            expect = self.expect
            if expect is None or expect[0] in self.seen:
                time.sleep(0.0005)
                continue
            try:
                state = self._state(conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.node.http_port, timeout=5)
                continue
            if state == expect[1]:
                self.seen[expect[0]] = time.perf_counter()
            time.sleep(0.001)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--zones", type=int, default=0, help="extra zones seeded directly (default 0)")
    parser.add_argument("--records", type=int, default=10, help="proxied records per seeded zone")
    args = parser.parse_args()

    schema = f"ol_bench_{secrets.token_hex(4)}"
    store = f"{PG}?schema={schema}"
    env = {"ORIGINLOCK_MASTER_KEY": secrets.token_hex(32), "ORIGINLOCK_ADMIN_TOKEN": secrets.token_urlsafe(24)}
    base = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    nodes = [start_serve(base / "n0", store, env=env)]
    if args.zones:
        from fleet_snapshot_scale import seed

        from originlock.store.db import Store
        from originlock.store.deadline import SNAPSHOT_TIMEOUTS
        from originlock.store.sealing import KeySealer

        bulk = Store(store, KeySealer(bytes.fromhex(env["ORIGINLOCK_MASTER_KEY"])), timeouts=SNAPSHOT_TIMEOUTS)
        account = httpx.get(
            f"{nodes[0].api_url}/client/v4/accounts",
            headers={"Authorization": f"Bearer {env['ORIGINLOCK_ADMIN_TOKEN']}"},
        ).json()["result"][0]["id"]
        seed(bulk, account, args.zones, args.records)
        bulk.close()
        nodes[0].stop()  # restart it so that it starts from the seeded store, like the others
        nodes[0] = start_serve(base / "n0", store, env=env)
    nodes += [start_serve(base / f"n{i}", store, env=env) for i in range(1, args.nodes)]
    headers = {"Authorization": f"Bearer {env['ORIGINLOCK_ADMIN_TOKEN']}"}
    try:
        api = nodes[0].api_url + "/client/v4"
        account = httpx.get(f"{api}/accounts", headers=headers).json()["result"][0]["id"]
        zone = httpx.post(
            f"{api}/zones", json={"name": "propagation.test", "account": {"id": account}}, headers=headers
        ).json()["result"]["id"]
        record = {"type": "A", "name": HOST, "content": "127.0.0.1", "proxied": True}
        assert httpx.post(f"{api}/zones/{zone}/dns_records", json=record, headers=headers).status_code == 200
        watchers = [Watcher(n) for n in nodes]
        for w in watchers:
            w.start()
        clients = [httpx.Client(base_url=n.api_url + "/client/v4", headers=headers) for n in nodes]
        from_request: list[float] = []
        from_response: list[float] = []
        time.sleep(1.0)
        for n in range(args.changes):
            on = n % 2 == 0
            started = time.perf_counter()
            for w in watchers:
                w.expect = (n, on)
            r = clients[n % len(nodes)].patch(
                f"/zones/{zone}/settings/always_use_https", json={"value": "on" if on else "off"}
            )
            answered = time.perf_counter()
            assert r.status_code == 200, r.text
            deadline = time.perf_counter() + 10
            while not all(n in w.seen for w in watchers):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"change {n} not seen on every node within 10 s")
                time.sleep(0.001)
            last = max(w.seen[n] for w in watchers)
            if os.environ.get("FLEET_BENCH_DEBUG"):
                print(n, [round((w.seen[n] - answered) * 1000, 1) for w in watchers])
            from_request.append((last - started) * 1000)
            from_response.append((last - answered) * 1000)
            time.sleep(0.05)
        for w in watchers:
            w.stop = True
        stages = ("notified_ms", "queued_ms", "compile_ms", "swap_ms", "total_ms")
        for i, node in enumerate(nodes):
            recent = httpx.get(f"{node.api_url}/healthz/snapshot").json().get("recent_changes", [])
            medians = {k: statistics.median(c[k] for c in recent if c[k] is not None) for k in stages if recent}
            print(
                f"node {i}, its last {len(recent)} changes, medians: "
                + ", ".join(f"{k} {v:.1f}" for k, v in medians.items())
            )
        for label, values in (("from API request", from_request), ("from API response", from_response)):
            print(
                f"{args.nodes} nodes, {len(values)} changes, every edge serving it, {label}: "
                f"p50 {statistics.median(values):.1f} ms, p99 {percentile(values, 0.99):.1f} ms, "
                f"max {max(values):.1f} ms"
            )
    finally:
        for node in nodes:
            node.stop()
        import psycopg

        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
