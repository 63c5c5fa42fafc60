"""The edge's snapshot source backed by the store: poll the generation, recompile on change.

Polling the one-row generation counter every 250 ms keeps a change made through the API under a
second away from every edge process (docs/architecture.md), on SQLite and on a PostgreSQL fleet alike, with no
extra channel to operate. The snapshot is also rebuilt every ``refresh_seconds`` even without changes,
because whether a certificate is usable depends on the clock (an expired one must stop being used).
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from originlock.snapshot.model import Snapshot
from originlock.store.compile import compile_snapshot
from originlock.store.db import Store
from originlock.store.sealing import KeySealer, load_or_create_master_key

__all__ = ["StoreSnapshotSource", "open_store_snapshots"]

log = logging.getLogger("originlock.snapshots")

#: How often the generation is polled. A change reaches the edge within this plus compile time.
POLL_SECONDS = 0.25
#: Rebuild at least this often, so certificate expiry takes effect without any store change.
REFRESH_SECONDS = 30.0


class StoreSnapshotSource:
    def __init__(self, store: Store, *, poll_seconds: float = POLL_SECONDS, refresh_seconds: float = REFRESH_SECONDS):
        self._store = store
        self._poll = poll_seconds
        self._refresh = refresh_seconds
        self._snapshot = compile_snapshot(store, datetime.now(UTC))

    def __repr__(self) -> str:
        return f"StoreSnapshotSource(generation={self._snapshot.generation})"

    def current(self) -> Snapshot:
        return self._snapshot

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_build = loop.time()
        while True:
            await asyncio.sleep(self._poll)
            try:
                generation = await asyncio.to_thread(self._store.generation)
                stale = loop.time() - last_build >= self._refresh
                if generation != self._snapshot.generation or stale:
                    self._snapshot = await asyncio.to_thread(compile_snapshot, self._store, datetime.now(UTC))
                    last_build = loop.time()
            except Exception as exc:  # the store may be briefly unreachable; keep serving the last snapshot
                log.warning(
                    "snapshot refresh failed, serving generation %s: %s", self._snapshot.generation, type(exc).__name__
                )


def open_store_snapshots(data_dir: str, store_url: str, fips: bool = False) -> StoreSnapshotSource:
    """A picklable factory body for ``--workers``: each worker opens its own store connection."""
    master = load_or_create_master_key(Path(data_dir) / "master.key", os.environ.get("ORIGINLOCK_MASTER_KEY"))
    return StoreSnapshotSource(Store(store_url, KeySealer(master), fips=fips))
