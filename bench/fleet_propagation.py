"""How long a change through one node's API takes to be served by every node's edge (issue 15).

Starts N ``originlock serve`` nodes on one PostgreSQL schema, makes one zone with a proxied hostname,
then flips the zone's ``always_use_https`` through node ``i % N``'s API, ``--changes`` times. One
thread per node polls that node's edge every ``--poll-ms`` while a change is awaited (idle otherwise),
over a kept-alive HTTP/1.1 connection (``301`` when the setting is on, anything else when off), and
records when it first shows the new state. Reports the latency from
the API request's start (and from its response) to the *last* node showing it: p50 / p99 / max.

Optionally seeds ``--zones`` x ``--records`` more hostnames straight into the store first, so the same
measure can be taken on a large snapshot (see bench/fleet_snapshot_scale.py for compile times). Each
node's ``/healthz/snapshot`` then tells where its time went for its last 20 changes (notified, queued,
compile, swap; from the writer's clock).

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
    """Polls one edge while a change is awaited; ``seen[n]`` is when change ``n``'s state was first observed.

    Idle between changes (an event wakes it), and ``poll`` seconds between requests while waiting: the
    watchers' own load on the nodes and on this process's GIL is part of what the benchmark measures.
    """

    def __init__(self, node: ServeProcess, poll: float) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.poll = poll
        self.expect: tuple[int, bool] = (-1, False)
        self.seen: dict[int, float] = {}
        self.go = threading.Event()
        self.done = threading.Event()
        self.stop = False

    def _state(self, conn: http.client.HTTPConnection) -> bool:
        conn.request("GET", "/", headers={"Host": HOST})
        response = conn.getresponse()
        response.read()
        return response.status == 301

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.node.http_port, timeout=5)
        while True:
            self.go.wait()
            self.go.clear()
            if self.stop:
                return
            n, want = self.expect
            while not self.stop:
                try:
                    state = self._state(conn)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.node.http_port, timeout=5)
                    continue
                if state == want:
                    self.seen[n] = time.perf_counter()
                    break
                time.sleep(self.poll)
            self.done.set()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--zones", type=int, default=0, help="extra zones seeded directly (default 0)")
    parser.add_argument("--records", type=int, default=10, help="proxied records per seeded zone")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="each watcher's pause between requests")
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
        watchers = [Watcher(n, args.poll_ms / 1000) for n in nodes]
        for w in watchers:
            w.start()
        clients = [httpx.Client(base_url=n.api_url + "/client/v4", headers=headers) for n in nodes]
        from_request: list[float] = []
        from_response: list[float] = []
        requests: list[float] = []
        time.sleep(3.0)  # past each node's first last-known-good save: the steady state is measured
        for n in range(args.changes):
            on = n % 2 == 0
            for w in watchers:
                w.expect = (n, on)
                w.done.clear()
                w.go.set()
            started = time.perf_counter()
            r = clients[n % len(nodes)].patch(
                f"/zones/{zone}/settings/always_use_https", json={"value": "on" if on else "off"}
            )
            answered = time.perf_counter()
            assert r.status_code == 200, r.text
            for w in watchers:
                if not w.done.wait(10):
                    raise RuntimeError(f"change {n} not seen on every node within 10 s")
            last = max(w.seen[n] for w in watchers)
            if os.environ.get("FLEET_BENCH_DEBUG"):
                print(n, [round((w.seen[n] - answered) * 1000, 1) for w in watchers])
            from_request.append((last - started) * 1000)
            from_response.append((last - answered) * 1000)
            requests.append((answered - started) * 1000)
            time.sleep(0.05)
        for w in watchers:
            w.stop = True
            w.go.set()
        stages = ("notified_ms", "queued_ms", "compile_ms", "swap_ms", "total_ms")
        for i, node in enumerate(nodes):
            recent = httpx.get(f"{node.api_url}/healthz/snapshot").json().get("recent_changes", [])
            medians = {k: statistics.median(c[k] for c in recent if c[k] is not None) for k in stages if recent}
            print(
                f"node {i}, its last {len(recent)} changes, medians: "
                + ", ".join(f"{k} {v:.1f}" for k, v in medians.items())
            )
        print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        for label, values in (
            ("from API request", from_request),
            ("from API response", from_response),
            ("the API request itself", requests),
        ):
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
