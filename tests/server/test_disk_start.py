"""A node serving its last-known-good copy before it opens the store (server/disk_start.py): the copy at
once, then the store's generation when it answers, or the copy handed over (not loaded again) when it
does not, and caught up once it answers."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import drop_schema

from originlock.server.bootstrap import bootstrap
from originlock.server.disk_start import DiskFirstSource, StoreSource, load_for_start
from originlock.server.last_known_good import FILE_NAME, LastKnownGood
from originlock.server.store_snapshots import StoreSnapshotSource
from originlock.store import dns, settings, zones
from originlock.store.db import Store
from originlock.store.deadline import SNAPSHOT_TIMEOUTS
from originlock.store.sealing import KeySealer
from originlock.testing.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

HOST = "www.disk.test"


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@dataclass
class Saved:
    url: str
    store: Store
    zone: str
    lkg: LastKnownGood
    generation: int


@pytest.fixture
async def saved_copy(pg_base_url: str, tmp_path: Path) -> AsyncIterator[Saved]:
    """A node that served ``always_use_https`` on and saved its copy; the store has moved on since (off)."""
    schema = f"ol_disk_{secrets.token_hex(5)}"
    url = f"{pg_base_url}?schema={schema}"
    d = bootstrap(tmp_path / "data", url)
    try:
        with d.store.write() as conn:
            zone = zones.create_zone(conn, name="disk.test", account_id=d.account_id).id
            dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
            settings.set_setting(conn, zone, "always_use_https", "on")
        lkg = LastKnownGood(d.data_dir, d.store.sealer)
        node = StoreSnapshotSource(d.store.companion(SNAPSHOT_TIMEOUTS), last_known_good=lkg)
        task = asyncio.create_task(node.run())
        try:
            await _until(lambda: (copy := lkg.load()) is not None and copy.generation == node.generation)
        finally:
            task.cancel()
        generation = node.generation
        with d.store.write() as conn:  # the fleet moves on while the node is down
            settings.set_setting(conn, zone, "always_use_https", "off")
        yield Saved(url, d.store, zone, LastKnownGood(d.data_dir, d.store.sealer), generation)
    finally:
        d.store.close()
        drop_schema(schema)


def _build(store: Store, lkg: LastKnownGood) -> StoreSource:
    return StoreSnapshotSource(store, last_known_good=lkg)


async def test_a_restart_serves_its_copy_at_once_then_the_stores_generation(saved_copy: Saved) -> None:
    copy = load_for_start(saved_copy.lkg)
    assert copy is not None and copy.generation == saved_copy.generation
    opened: list[Store] = []

    def connect() -> Store:
        opened.append(Store(saved_copy.url, saved_copy.store.sealer, timeouts=SNAPSHOT_TIMEOUTS, migrate_schema=False))
        return opened[-1]

    source = DiskFirstSource(copy, saved_copy.lkg, connect, _build)
    assert source.current().routes[HOST].always_use_https  # the copy, before anything touched the store
    stats = source.statistics()
    assert stats.from_disk and stats.generation == saved_copy.generation and stats.routes == 1
    assert not opened and not source.handed_over
    task = asyncio.create_task(source.run())
    try:
        await _until(lambda: not source.current().routes[HOST].always_use_https)
        assert source.handed_over and not source.statistics().from_disk
        assert source.generation == saved_copy.store.generation() > saved_copy.generation
        assert (await source.connected_future()) is opened[0]
        # The copy's objects are freed once nothing holds the snapshot taken from them.
        await _until(lambda: copy.assembly.zone_count == 0)
    finally:
        task.cancel()
        for store in opened:
            store.close()


async def test_with_the_store_down_the_copy_is_handed_over_then_caught_up(saved_copy: Saved) -> None:
    copy = load_for_start(saved_copy.lkg)
    assert copy is not None
    # The store's source must not read the file again: it takes the copy already in memory.
    (saved_copy.lkg.path).unlink()
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.set_mode("refuse")
    via_proxy = saved_copy.url.replace("127.0.0.1:5432", proxy.address)
    offline = Store(via_proxy, saved_copy.store.sealer, timeouts=SNAPSHOT_TIMEOUTS, migrate_schema=False)
    source = DiskFirstSource(copy, saved_copy.lkg, lambda: offline, _build)
    task = asyncio.create_task(source.run())
    try:
        await _until(lambda: source.handed_over)
        stats = source.statistics()
        assert stats.from_disk and stats.generation == saved_copy.generation
        assert source.current().routes[HOST].always_use_https
        proxy.set_mode("pass")
        await _until(lambda: not source.statistics().from_disk, timeout=15)
        assert not source.current().routes[HOST].always_use_https
        assert source.generation == saved_copy.store.generation()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proxy.close()
        offline.close()
    # Stopping saved the store's generation to the file again.
    assert (saved_copy.lkg.path.parent / FILE_NAME).exists()


def test_serving_a_copy_imports_nothing_of_the_store_layer(saved_copy: Saved) -> None:
    """What the edge role runs before it serves a copy: its module, the load, the source."""
    program = f"""
import os
import sys
from pathlib import Path
import originlock.cli.roles
from originlock.server.disk_start import DiskFirstSource, load_for_start
from originlock.server.last_known_good import LastKnownGood
from originlock.store.sealing import KeySealer, load_or_create_master_key
data = Path({str(saved_copy.lkg.path.parent)!r})
key = load_or_create_master_key(data / "master.key", os.environ.get("ORIGINLOCK_MASTER_KEY"))
lkg = LastKnownGood(data, KeySealer(key))
copy = load_for_start(lkg)
assert copy is not None
source = DiskFirstSource(copy, lkg, lambda: None, lambda store, lkg: None)
assert source.current().routes[{HOST!r}].always_use_https
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "prometheus_client", "psycopg"))
print(heavy)
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_a_damaged_copy_is_left_for_the_store(tmp_path: Path) -> None:
    lkg = LastKnownGood(tmp_path, KeySealer(secrets.token_bytes(32)))
    lkg.path.write_bytes(b"not a database" * 100)
    assert load_for_start(lkg) is None
