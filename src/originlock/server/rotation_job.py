"""The automatic-rotation job: renew and retire zone certificates issued by the deployment (store/auto_rotation.py).

Checks read-only every tick and opens a write transaction only when a renewal or retirement is due, so
an idle deployment does not bump the store generation (and rebuild every edge's snapshot) each minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from originlock.store.auto_rotation import Rotation, pending, rotate_due
from originlock.store.db import Store

__all__ = ["AutoRotation"]

log = logging.getLogger("originlock.rotation")
INTERVAL_SECONDS = 60.0


class AutoRotation:
    def __init__(
        self,
        store: Store,
        *,
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._interval = interval
        self._clock = clock

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception as exc:  # a store hiccup must not end rotation for good
                log.warning("automatic rotation tick failed: %s", type(exc).__name__)
            await asyncio.sleep(self._interval)

    def tick(self) -> list[Rotation]:
        now = self._clock()
        with self._store.read() as conn:
            if not pending(conn, now):
                return []
        with self._store.write() as conn:
            changes = rotate_due(conn, self._store.sealer, now)
        for change in changes:
            if change.issued:
                log.info("zone %s: issued AOP certificate %s", change.zone_id, change.issued)
            for old in change.deleted:
                log.info("zone %s: retired AOP certificate %s after the overlap window", change.zone_id, old)
        return changes
