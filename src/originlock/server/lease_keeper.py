"""Renew this node's job leases every few seconds, so a dead node's jobs move within seconds.

A lease renewed only at its job's own period must last several periods (a minute-long job would hold
a three-minute lease), and a node that dies leaves its jobs unrun for that long. The keeper renews every
lease this process holds every :data:`HEARTBEAT_SECONDS`, which lets leases last only :data:`KEPT_TTL`:
when a node dies, its leases run out within that, and the next node to look (at its job's next period)
takes the job over. Failover is therefore about one job period plus a few seconds.

Leases register themselves (``JobLease.__init__``); the keeper shortens the ttl of every registered
lease when it starts, so nothing else in the node changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from originlock.server.leadership import live_leases

__all__ = ["HEARTBEAT_SECONDS", "KEPT_TTL", "LeaseKeeper"]

log = logging.getLogger("originlock.leadership")

#: How often held leases are renewed.
HEARTBEAT_SECONDS = 2.0
#: A kept lease's lifetime: several heartbeats, so one slow renewal (a store hiccup) does not move a job.
KEPT_TTL = timedelta(seconds=8)


class LeaseKeeper:
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock

    def __repr__(self) -> str:
        return f"LeaseKeeper(leases={len(live_leases())})"

    def _renew(self) -> None:
        for lease in live_leases():
            lease.ttl = min(lease.ttl, KEPT_TTL)
            if lease.held:
                try:
                    lease.hold(self._clock())
                except Exception as exc:  # the store may be down: the job's own tick reports it
                    log.debug("%s: renewal failed: %s", lease.job, type(exc).__name__)

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self._renew)
            await asyncio.sleep(HEARTBEAT_SECONDS)
