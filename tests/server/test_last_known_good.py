"""Last-known-good on disk (issue 15): saved as the source changes, keys sealed, served at a start without
the store, and left behind for the store's own snapshot once it answers."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest

from originlock.server.bootstrap import bootstrap
from originlock.server.last_known_good import FILE_NAME, LastKnownGood
from originlock.server.store_snapshots import StoreSnapshotSource
from originlock.store import aop, dns, settings, zones
from originlock.store.db import Store
from originlock.store.deadline import SNAPSHOT_TIMEOUTS
from originlock.testing.tcp_proxy import TcpProxy
from originlock.testing.upload_pki import UploadPki, leaf_pems

pytestmark = pytest.mark.postgres


async def _until(predicate: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_saved_sealed_served_without_the_store_then_caught_up(
    pg_base_url: str, tmp_path: Path, pki: UploadPki
) -> None:
    schema = f"ol_lkg_{secrets.token_hex(5)}"
    url = f"{pg_base_url}?schema={schema}"
    d = bootstrap(tmp_path / "data", url)
    now = datetime.now(UTC)
    leaf = pki.client("zone")
    with d.store.write() as conn:
        zone = zones.create_zone(conn, name="lkg.test", account_id=d.account_id).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
        settings.set_setting(conn, zone, "ssl", "origin_pull")
        settings.set_aop_zone_enabled(conn, zone, True)
        aop.upload_cert(conn, d.store.sealer, zone, "zone", *leaf_pems(leaf), now)
    lkg = LastKnownGood(d.data_dir, d.store.sealer)
    source = StoreSnapshotSource(d.store.companion(SNAPSHOT_TIMEOUTS), last_known_good=lkg)
    d.store.committed_hooks.append(source.notify)
    task = asyncio.create_task(source.run())
    try:
        await _until(lambda: (d.data_dir / FILE_NAME).exists())
        with d.store.write() as conn:
            settings.set_setting(conn, zone, "always_use_https", "on")
        await _until(lambda: source.current().routes["www.lkg.test"].always_use_https)
        saved = lambda: lkg.load()  # noqa: E731
        await _until(lambda: saved() is not None and saved().generation == source.generation)  # type: ignore[union-attr]
    finally:
        task.cancel()
    served = source.current()
    raw = (d.data_dir / FILE_NAME).read_bytes()
    assert b"PRIVATE KEY" not in raw and leaf.key_pem not in raw  # keys only sealed
    assert (d.data_dir / FILE_NAME).stat().st_mode & 0o077 == 0

    # A node starting while the store refuses connections serves what was saved.
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.set_mode("refuse")
    offline = Store(url.replace("127.0.0.1:5432", proxy.address), d.store.sealer, migrate_schema=False)
    restarted = StoreSnapshotSource(offline.companion(SNAPSHOT_TIMEOUTS), last_known_good=lkg)
    stats = restarted.statistics()
    assert stats.from_disk and stats.generation == served.generation
    route = restarted.current().routes["www.lkg.test"]
    assert route == served.routes["www.lkg.test"] and route.always_use_https
    assert (
        route.client_cert is not None and route.client_cert.key_pem == served.routes["www.lkg.test"].client_cert.key_pem
    )  # type: ignore[union-attr]
    with d.store.write() as conn:  # the fleet moves on meanwhile
        settings.set_setting(conn, zone, "always_use_https", "off")
    task = asyncio.create_task(restarted.run())
    try:
        await asyncio.sleep(0.3)
        assert restarted.statistics().from_disk  # still unreachable: still serving from disk
        proxy.set_mode("pass")
        await _until(lambda: not restarted.statistics().from_disk, timeout=10)
        assert not restarted.current().routes["www.lkg.test"].always_use_https
        assert restarted.generation == d.store.generation()
    finally:
        task.cancel()
        proxy.close()
        offline.close()
        d.store.close()
        from tests.conftest import drop_schema

        drop_schema(schema)
