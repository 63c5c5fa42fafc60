"""The automatic-rotation job: renew and retire zone certificates issued by the deployment (store/auto_rotation.py).

Checks read-only every tick and opens a write transaction only when a renewal or retirement is due, so
an idle deployment does not bump the store generation (and rebuild every edge's snapshot) each minute.

In a fleet only the node holding the ``auto-rotation`` lease (``server/leadership.py``) rotates. It renews
the lease once more as the first statement of the rotation's own write transaction: on PostgreSQL that
keeps the lease row locked until the new certificates are committed, so a node whose lease ran out just
before cannot issue a second certificate for the same zone alongside the new holder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from originlock.server.leadership import JobLease
from originlock.store.auto_rotation import Rotation, pending, rotate_due
from originlock.store.db import Store

__all__ = ["INTERVAL_SECONDS", "JOB", "AutoRotation"]

log = logging.getLogger("originlock.rotation")
INTERVAL_SECONDS = 60.0
#: The lease's name in ``job_leases``.
JOB = "auto-rotation"


class _LeaseLost(Exception):
    """Rolls the rotation's write transaction back, so that a node that lost the lease does not even bump
    the generation."""


class AutoRotation:
    """Renews and retires automatic zone certificates every ``interval`` seconds.

    Args:
        store: the store whose opted-in zones are rotated.
        interval: seconds between ticks of :meth:`run`.
        clock: the wall clock; renewal times and the lease follow it.
        lease: in a fleet, this node's ``auto-rotation`` lease: the job rotates only while it holds it.
            None: this process is the only one running the job (tests, embedding).
    """

    def __init__(
        self,
        store: Store,
        *,
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: JobLease | None = None,
    ) -> None:
        self._store = store
        self._interval = interval
        self._clock = clock
        self._lease = lease

    def __repr__(self) -> str:
        return f"AutoRotation(interval={self._interval:g}, lease={self._lease!r})"

    async def run(self) -> None:
        try:
            while True:
                try:
                    await asyncio.to_thread(self.tick)
                except Exception as exc:  # a store hiccup must not end rotation for good
                    log.warning("automatic rotation tick failed: %s", type(exc).__name__)
                await asyncio.sleep(self._interval)
        finally:
            # Shutdown: hand the job to another node now rather than when the lease runs out.
            if self._lease is not None:
                self._lease.release()

    def tick(self) -> list[Rotation]:
        """One pass; returns what changed (nothing on a node that does not hold the lease)."""
        now = self._clock()
        # Renewed every tick, work or not, so the job stays on one node instead of going to whichever
        # node happens to look first once something is due.
        if self._lease is not None and not self._lease.hold(now):
            return []
        with self._store.read() as conn:
            if not pending(conn, now):
                return []
        try:
            with self._store.write() as conn:
                if self._lease is not None and not self._lease.hold_in(conn, now):
                    raise _LeaseLost
                changes = rotate_due(conn, self._store.sealer, now)
        except _LeaseLost:
            return []  # lost between the two transactions: the new holder rotates
        for change in changes:
            if change.issued:
                log.info("zone %s: issued AOP certificate %s", change.zone_id, change.issued)
            for old in change.deleted:
                log.info("zone %s: retired AOP certificate %s after the overlap window", change.zone_id, old)
        return changes
