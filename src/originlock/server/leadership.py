"""Which node of a fleet runs each periodic job: a :class:`JobLease` per job, renewed every period.

Every ``originlock serve`` process starts the periodic jobs (expiry alerts, automatic rotation, the
origin exposure monitor), and each job asks its lease at the start of every period whether this node
is the one to do the work (``store/leases.py`` has the SQL and the theory). With one node, on SQLite or
PostgreSQL, the lease is always this node's. In a fleet exactly one node does each job; when it dies,
its leases run out and the next node to look takes the job over within :data:`LEASE_PERIODS` periods.
A clean shutdown gives the leases up, so another node takes over at its next period.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import weakref
from datetime import datetime, timedelta

from sqlalchemy import Connection

from originlock.store.db import Store
from originlock.store.leases import release, try_acquire

__all__ = ["LEASE_PERIODS", "MIN_TTL", "JobLease", "live_leases", "node_id"]

log = logging.getLogger("originlock.leadership")

#: A lease lasts this many periods of its job: one slow tick or a short database outage does not move
#: the job to another node, and a dead node's jobs move within three periods (3 minutes for alerts
#: and rotation by default). Kubernetes' leader election has the same shape: a 15 s lease retried every 2 s.
LEASE_PERIODS = 3
#: Floor for very short periods (tests run jobs every fraction of a second).
MIN_TTL = timedelta(seconds=1)


_LIVE: weakref.WeakSet[JobLease] = weakref.WeakSet()


def live_leases() -> list[JobLease]:
    """Every lease object of this process still in use."""
    return list(_LIVE)


def node_id() -> str:
    """This process's holder id: host and pid for the operator reading ``job_leases``, plus a random part
    so that a restarted process (same host, recycled pid) is never mistaken for its predecessor."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class JobLease:
    """This node's claim on one periodic job in ``store``.

    Args:
        store: the store every node of the fleet shares.
        job: the job's name, one lease per name (``expiry-alerts``, ``auto-rotation``, ``origin-monitor``).
        holder: this node's id (:func:`node_id`), the same for all of a process's jobs.
        ttl: how long a taken or renewed lease lasts; several of the job's periods.
    """

    def __init__(self, store: Store, job: str, holder: str, ttl: timedelta) -> None:
        if ttl <= timedelta(0):
            raise ValueError("a lease needs a positive ttl")
        self._store = store
        self.job = job
        self.holder = holder
        self.ttl = ttl
        #: What the last look found; None before the first.
        self._held: bool | None = None
        _LIVE.add(self)  # for the lease keeper (server/lease_keeper.py), when the node runs one

    @classmethod
    def for_period(cls, store: Store, job: str, holder: str, period: float) -> JobLease:
        """A lease lasting :data:`LEASE_PERIODS` of a job that looks every ``period`` seconds."""
        return cls(store, job, holder, max(timedelta(seconds=period * LEASE_PERIODS), MIN_TTL))

    def __repr__(self) -> str:
        return f"JobLease(job={self.job!r}, holder={self.holder!r}, ttl={self.ttl.total_seconds():g}s)"

    @property
    def held(self) -> bool:
        """Whether the last look found this node holding the lease."""
        return bool(self._held)

    def hold(self, now: datetime) -> bool:
        """Take or renew the lease in a transaction of its own; returns whether this node holds it.

        Raises whatever the store raises when it cannot be reached: the job's tick then fails and says so.
        """
        with self._store.status_write() as conn:
            return self.hold_in(conn, now)

    def hold_in(self, conn: Connection, now: datetime) -> bool:
        """:meth:`hold` inside the caller's write transaction, to fence the work done in it (PostgreSQL keeps
        the lease row locked until that transaction ends)."""
        held = try_acquire(conn, self.job, self.holder, now, self.ttl)
        if held != self._held:
            # Only changes are logged: which node does what is worth a line, the renewal every minute is not.
            if held:
                log.info("%s: this node (%s) runs the job", self.job, self.holder)
            else:
                log.info("%s: another node runs the job; this node (%s) stands by", self.job, self.holder)
        self._held = held
        return held

    def release(self) -> None:
        """Give the lease up (shutdown). Never raises: a lease that cannot be released just runs out."""
        try:
            with self._store.status_write() as conn:
                release(conn, self.job, self.holder)
        except Exception as exc:
            log.warning("%s: could not give the lease up (it runs out by itself): %s", self.job, type(exc).__name__)
        self._held = False
