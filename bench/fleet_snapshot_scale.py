"""Snapshot compile times at fleet scale (issue 15): a cold start, and one zone's change.

Seeds the store directly (bulk inserts, no API): ``--zones`` zones of ``--records`` proxied hostnames
each, every zone with ``ssl=origin_pull``, zone-level AOP enabled and one zone client certificate (its key
sealed per row like an upload), so 10k zones x 10 = 100k hostnames and 10k client certificates. Then:

- cold: ``compile_assembly`` + ``snapshot()`` without the cyclic collector (what a node does at start), best
  of ``--cold-runs``;
- change: ``--changes`` times, one zone's setting written through ``Store.write`` and that zone
  recompiled into the assembly plus a new snapshot (what a node does per change): p50 / p99 / max;
- idle: CPU seconds the process spends in 10 s without changes (the source sleeps until the next
  certificate expiry or fallback poll).

    python bench/fleet_snapshot_scale.py --zones 10000 --records 10
    python bench/fleet_snapshot_scale.py --zones 1000 --records 10 --store sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cryptography.hazmat.primitives import hashes
from sqlalchemy import insert

from originlock.server.bootstrap import bootstrap
from originlock.server.store_snapshots import StoreSnapshotSource, long_lived_objects
from originlock.store import schema, settings
from originlock.store.compile import compile_assembly, refresh_assembly
from originlock.store.db import Store, to_iso
from originlock.store.deadline import SNAPSHOT_TIMEOUTS
from originlock.testing.upload_pki import UploadPki

PG = os.environ.get("ORIGINLOCK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def seed(store: Store, account_id: str, zones: int, records: int) -> list[str]:
    pki = UploadPki.create()
    leaf = pki.client("bench-zone")
    fingerprint = leaf.cert.fingerprint(hashes.SHA256()).hex()
    now = datetime.now(UTC)
    stamp, expires = to_iso(now), to_iso(now + timedelta(days=300))
    not_before = to_iso(leaf.cert.not_valid_before_utc)  # as store/aop.py writes it (migration 9)
    ids = [secrets.token_hex(16) for _ in range(zones)]
    batch = 2000
    for start in range(0, zones, batch):
        chunk = ids[start : start + batch]
        with store.write() as conn:
            conn.execute(
                insert(schema.zones),
                [
                    dict(
                        id=z,
                        account_id=account_id,
                        name=f"z{start + i}.bench",
                        type="full",
                        paused=False,
                        created_on=stamp,
                        modified_on=stamp,
                    )
                    for i, z in enumerate(chunk)
                ],
            )
            conn.execute(
                insert(schema.dns_records),
                [
                    dict(
                        id=secrets.token_hex(16),
                        zone_id=z,
                        type="A",
                        name=f"h{r}.z{start + i}.bench",
                        content="127.0.0.1",
                        proxied=True,
                        ttl=1,
                        comment=None,
                        created_on=stamp,
                        modified_on=stamp,
                    )
                    for i, z in enumerate(chunk)
                    for r in range(records)
                ],
            )
            conn.execute(
                insert(schema.zone_settings),
                [
                    dict(zone_id=z, setting_id=s, value=v, modified_on=stamp)
                    for z in chunk
                    for s, v in (("ssl", '"origin_pull"'), ("origin_tls_client_auth", "true"))
                ],
            )
            rows = []
            for z in chunk:
                cert_id = secrets.token_hex(16)
                rows.append(
                    dict(
                        id=cert_id,
                        zone_id=z,
                        kind="zone",
                        certificate=leaf.cert_pem,
                        chain_pem=leaf.cert_pem,
                        key_sealed=store.sealer.seal(leaf.key_pem, cert_id),
                        issuer="bench",
                        signature="ECDSAWithSHA256",
                        serial_number="1",
                        fingerprint=fingerprint,
                        expires_on=expires,
                        not_before=not_before,
                        status="active",
                        uploaded_on=stamp,
                        updated_at=stamp,
                    )
                )
            conn.execute(insert(schema.aop_certs), rows)
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zones", type=int, default=1000)
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--cold-runs", type=int, default=2)
    parser.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fleet-scale-"))
    schema_name = f"ol_scale_{secrets.token_hex(4)}"
    url = f"{PG}?schema={schema_name}" if args.store == "postgres" else f"sqlite:///{tmp / 'store.db'}"
    deployment = bootstrap(tmp / "data", url)
    store = deployment.store
    try:
        started = time.perf_counter()
        bulk = store.companion(SNAPSHOT_TIMEOUTS)  # the API's 3-second transactions are too short for bulk loads
        ids = seed(bulk, deployment.account_id, args.zones, args.records)
        print(
            f"seeded {args.zones} zones, {args.zones * args.records} hostnames, {args.zones} client certificates "
            f"in {time.perf_counter() - started:.1f} s ({args.store})"
        )
        reader = store.companion(SNAPSHOT_TIMEOUTS)
        cold = []
        for _ in range(args.cold_runs):
            started = time.perf_counter()
            with long_lived_objects():  # as the node's source builds it
                generation, assembly = compile_assembly(reader, datetime.now(UTC))
                snapshot = assembly.snapshot(generation)
            cold.append(time.perf_counter() - started)
        assert len(snapshot.routes) == args.zones * args.records
        print(f"cold compile (every zone): best {min(cold):.2f} s of {args.cold_runs}")
        changes = []
        for n in range(args.changes):
            zone = ids[(n * 7919) % len(ids)]
            started = time.perf_counter()
            with store.write() as conn:
                settings.set_setting(conn, zone, "always_use_https", "on" if n % 2 else "off")
            written = time.perf_counter()
            refresh_assembly(reader, assembly, {zone}, datetime.now(UTC))
            assembly.snapshot(generation + n)
            changes.append(((time.perf_counter() - written) * 1000, (written - started) * 1000))
        recompile = [c[0] for c in changes]
        print(
            f"one zone's change, recompile + new snapshot: p50 {statistics.median(recompile):.1f} ms, "
            f"p99 {sorted(recompile)[int(0.99 * len(recompile))]:.1f} ms, max {max(recompile):.1f} ms "
            f"(the write itself p50 {statistics.median(c[1] for c in changes):.1f} ms)"
        )

        async def idle() -> float:
            source = StoreSnapshotSource(reader)
            task = asyncio.create_task(source.run())
            await asyncio.sleep(1)
            before = resource.getrusage(resource.RUSAGE_SELF)
            await asyncio.sleep(10)
            after = resource.getrusage(resource.RUSAGE_SELF)
            task.cancel()
            return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

        print(f"idle source, CPU seconds in 10 s: {asyncio.run(idle()):.3f}")
    finally:
        store.close()
        if args.store == "postgres":
            import psycopg

            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
