"""How long applying one change stalls the edge's event loop at fleet scale (issue 15: no edge latency
spike above 10 ms during a change).

Builds a snapshot assembly in memory, without a store: ``--zones`` zones of ``--records`` proxied
hostnames, each zone with its own client certificate (10k x 10 = 100k hostnames, 10k certificates), as
the store's compile makes them. Then, ``--changes`` times, one zone's routes change the way a node
applies a change: in a worker thread the zone's parts are replaced and a new snapshot is frozen; on the
event loop the edge swaps it in (the client-certificate sets compared, the TLS 1.3 cap looked at, as
``edge/state.py`` and ``edge/visitor_tls.py`` do). Meanwhile a ticker task on the loop sleeps 1 ms at a
time and records how late it wakes: that lateness is what a request arriving then would wait.

Reported: the worker's ``snapshot()`` call (a single C-level copy of the route table holds the interpreter
lock the whole time, so the loop cannot run during it), the loop's swap, and the ticker's lateness with
changes against the same loop without them (p50 / p99 / max, ms).

    python bench/fleet_apply_stall.py --zones 10000 --records 10
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from originlock.edge.visitor_tls import _any_tls12_only
from originlock.snapshot.assembly import SnapshotAssembly, ZoneParts
from originlock.snapshot.model import ClientCert, DeploymentPki, Route, Snapshot, SslMode

try:
    from originlock.edge.state import certificates_gone
except ImportError:  # a tree before it: the edge subtracted the two sets

    def certificates_gone(old: Snapshot, new: Snapshot) -> bool:
        return bool(old.client_fingerprints - new.client_fingerprints)


PKI = DeploymentPki(edge_ca_cert_pem=b"ca", edge_ca_key_pem=b"key")
NOT_AFTER = datetime.now(UTC) + timedelta(days=300)


def zone_parts(index: int, records: int, origin: str) -> ZoneParts:
    zone_id = f"{index:032x}"
    name = f"zone{index}.example"
    cert = ClientCert(f"cert{index}", "zone", f"{index:064x}", b"chain", b"key", NOT_AFTER)
    shared = Route.template(
        zone_id=zone_id,
        zone_name=name,
        ssl_mode=SslMode.ORIGIN_PULL,
        always_use_https=False,
        min_tls_version="1.2",
        client_cert=cert,
    )
    hosts = [f"h{i}.{name}" for i in range(records)]
    routes = {host: Route.for_host(shared, host, origin, "A") for host in hosts}
    return ZoneParts(zone_id, routes, dict.fromkeys(hosts, "2026-01-01T00:00:00Z"))


def freeze(assembly: SnapshotAssembly, generation: int) -> tuple[Snapshot, float]:
    started = time.perf_counter()
    try:
        snapshot = assembly.snapshot(generation, lambda: time.sleep(0.0002))  # type: ignore[call-arg]
    except TypeError:  # a tree before the route table's overlay: snapshot(generation) only
        snapshot = assembly.snapshot(generation)
    return snapshot, time.perf_counter() - started


def swap(old: Snapshot, new: Snapshot) -> float:
    """What the edge does on its loop when it notices a new snapshot (edge/state.py, edge/visitor_tls.py)."""
    started = time.perf_counter()
    if certificates_gone(old, new):
        pass  # the edge would retire origin connections of the certificates gone
    _any_tls12_only(new)
    new.route_for("h0.zone0.example")
    return time.perf_counter() - started


async def tick(stop: asyncio.Event, late: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        late.append(time.perf_counter() - started - 0.001)


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "-"
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.2f}, p99 {p99 * 1000:.2f}, max {ordered[-1] * 1000:.2f} ms"


async def run(zones: int, records: int, changes: int, interval: float) -> None:
    gc.disable()  # as a node builds its snapshot (server/store_snapshots.long_lived_objects)
    started = time.perf_counter()
    assembly = SnapshotAssembly(PKI, (zone_parts(i, records, "192.0.2.1") for i in range(zones)))
    current = assembly.snapshot(1)
    gc.freeze()
    gc.enable()
    print(f"{zones} zones, {len(current.routes)} hostnames built in {time.perf_counter() - started:.2f} s")

    stop = asyncio.Event()
    idle: list[float] = []
    ticker = asyncio.create_task(tick(stop, idle))
    await asyncio.sleep(changes * interval)
    stop.set()
    await ticker

    stop = asyncio.Event()
    busy: list[float] = []
    frozen: list[float] = []
    swapped: list[float] = []
    ticker = asyncio.create_task(tick(stop, busy))
    for generation in range(2, changes + 2):
        zone = (generation * 7919) % zones
        part = zone_parts(zone, records, f"192.0.2.{generation % 250 + 1}")

        def apply(part: ZoneParts = part, generation: int = generation) -> Snapshot:
            assembly.replace([part], [])
            snapshot, seconds = freeze(assembly, generation)
            frozen.append(seconds)
            return snapshot

        new = await asyncio.to_thread(apply)
        swapped.append(swap(current, new))
        current = new
        await asyncio.sleep(interval)
    stop.set()
    await ticker
    assert current.route_for("h0.zone0.example") is not None
    print(f"worker snapshot() per change:  {ms(frozen)}")
    print(f"loop swap per change:          {ms(swapped)}")
    print(f"loop lateness, no changes:     {ms(idle)}")
    print(f"loop lateness, {changes} changes: {ms(busy)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zones", type=int, default=10000)
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between two changes")
    args = parser.parse_args()
    asyncio.run(run(args.zones, args.records, args.changes, args.interval))


if __name__ == "__main__":
    main()
