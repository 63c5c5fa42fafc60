"""The lease keeper: held leases renewed every heartbeat with a short lifetime, so a dead node's jobs move
in seconds; standby leases are left alone (issue 15)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from originlock.server.leadership import JobLease
from originlock.server.lease_keeper import KEPT_TTL, LeaseKeeper
from originlock.store.db import Store
from originlock.store.leases import current_lease
from originlock.store.sealing import KeySealer


async def test_keeper_shortens_and_renews_held_leases_only(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", KeySealer(b"k" * 32))
    now = datetime.now(UTC)
    ours = JobLease.for_period(store, "rotation", "node-a", 3600)  # an hourly job: a 3-hour lease before
    theirs = JobLease.for_period(store, "alerts", "node-b", 60)
    standby = JobLease.for_period(store, "alerts", "node-a", 60)
    assert ours.hold(now) and theirs.hold(now) and not standby.hold(now)
    keeper = LeaseKeeper()
    task = asyncio.create_task(keeper.run())
    try:
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
    assert ours.ttl == KEPT_TTL and standby.ttl == KEPT_TTL
    with store.read() as conn:
        lease = current_lease(conn, "rotation", now)
        assert lease is not None and lease.holder == "node-a"
        # Renewed from the keeper's clock with the short lifetime: gone 8 s after the holder stops renewing.
        assert lease.expires_at <= datetime.now(UTC) + KEPT_TTL
        assert current_lease(conn, "rotation", datetime.now(UTC) + KEPT_TTL + timedelta(seconds=1)) is None
        alerts = current_lease(conn, "alerts", now)
        assert alerts is not None and alerts.holder == "node-b"  # the keeper never takes a lease it lacks
    store.close()
