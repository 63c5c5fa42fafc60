"""The store-backed snapshot source: told (or, failing that, polling the change log) what changed, it
recompiles that zone only; writes no snapshot depends on rebuild nothing (issue 15)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from originlock.server.bootstrap import bootstrap
from originlock.server.store_snapshots import StoreSnapshotSource
from originlock.store import dns, settings, tokens, zones
from originlock.store.deadline import SNAPSHOT_TIMEOUTS


async def _until(predicate: object, timeout: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():  # type: ignore[operator]
        assert loop.time() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.005)
    return loop.time() - started


async def test_changes_recompile_their_zone_by_hook_or_by_poll(store_url: str, tmp_path: Path) -> None:
    d = bootstrap(tmp_path / "data", store_url)
    store = d.store
    with store.write() as conn:
        zone = zones.create_zone(conn, name="src.test", account_id=d.account_id).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    source = StoreSnapshotSource(store.companion(SNAPSHOT_TIMEOUTS), poll_seconds=0.2)
    assert source.statistics().full_rebuilds == 1 and "www.src.test" in source.current().routes
    task = asyncio.create_task(source.run())
    try:
        # Without the hook, the fallback poll reads the change log and recompiles the one zone.
        with store.write() as conn:
            settings.set_setting(conn, zone, "always_use_https", "on")
        await _until(lambda: source.current().routes["www.src.test"].always_use_https)
        stats = source.statistics()
        assert stats.full_rebuilds == 1 and stats.rebuilds == 2 and stats.generation == store.generation()
        # With the hook (writes through this process), no waiting for the poll.
        store.committed_hooks.append(source.notify)
        with store.write() as conn:
            settings.set_setting(conn, zone, "always_use_https", "off")
        took = await _until(lambda: not source.current().routes["www.src.test"].always_use_https)
        assert took < 0.15  # well before the next 0.2-second poll could have seen it
        before = source.current()
        with store.write() as conn:
            tokens.create_token(conn, "ci", ["*"], None)
        await _until(lambda: source.generation == store.generation())
        assert source.current() is before and source.statistics().rebuilds == 3  # nothing to rebuild
    finally:
        task.cancel()
        store.close()
