"""Leases on periodic jobs: in a fleet sharing one store, one node at a time does a job's work.

Theory of operation. A lease is one row of ``job_leases``: the job's name, the node holding it and when
the lease expires. A node that wants to run a job calls :func:`try_acquire` at the start of every period;
the call takes the lease when nobody holds it, when its holder let it expire (the node died, or lost the
database), or renews it when the caller already holds it, and says whether the caller holds it now.
It is one ``INSERT ... ON CONFLICT (job) DO UPDATE ... WHERE`` statement, the same text on SQLite and
PostgreSQL, so two nodes asking at the same instant cannot both win: PostgreSQL takes the row lock and
evaluates the ``WHERE`` against the committed row, SQLite serialises writers.

Time is passed in, not read from the database: the jobs already run on an injected clock (tests move
it by days), and the same clock then decides expiry. Across a fleet this assumes the nodes' clocks agree
to well within a lease's lifetime (minutes), which NTP gives. A lease that expires while its holder is
still working (a tick longer than the lease) lets a second node in: the work itself must stay safe when
that happens (alert deliveries are claimed one by one; rotation renews the lease inside its own write
transaction).

Rows are written with :meth:`Store.status_write`: a lease is not configuration, and renewing it every
minute must not make every edge recompile its snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, or_, select

from originlock.store import schema
from originlock.store.db import from_iso, insert_or_conflict, to_iso

__all__ = ["Lease", "current_lease", "release", "try_acquire"]


@dataclass(frozen=True)
class Lease:
    """One job's lease as stored."""

    job: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


def try_acquire(conn: Connection, job: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew ``job``'s lease for ``holder`` until ``now + ttl``; returns whether ``holder`` has it.

    Taken when there is no lease or the current one expired at or before ``now``; renewed when ``holder``
    already holds it (even if it expired meanwhile and nobody else took it). Otherwise nothing changes.
    On PostgreSQL the row stays locked until the caller's transaction ends, so work done in the same
    transaction is fenced: no other node can take the lease before that work commits or rolls back.
    """
    if ttl <= timedelta(0):
        raise ValueError("a lease needs a positive ttl")
    table = schema.job_leases
    stmt = insert_or_conflict(conn, table).values(
        job=job, holder=holder, acquired_at=to_iso(now), expires_at=to_iso(now + ttl)
    )
    ours = table.c.holder == stmt.excluded.holder
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.job],
        set_={
            "holder": stmt.excluded.holder,
            "expires_at": stmt.excluded.expires_at,
            # A renewal keeps the original start: operators can see how long a node has been in charge.
            "acquired_at": case((ours, table.c.acquired_at), else_=stmt.excluded.acquired_at),
        },
        # Timestamps are fixed-width UTC strings (schema.py), so text order is time order on both backends.
        where=or_(ours, table.c.expires_at <= stmt.excluded.acquired_at),
    )
    # RETURNING yields a row only when the row was inserted or updated: exactly when the caller holds it.
    return conn.execute(stmt.returning(table.c.job)).first() is not None


def release(conn: Connection, job: str, holder: str) -> bool:
    """Give ``job``'s lease up if ``holder`` holds it (a clean shutdown), so another node takes over at once.

    Returns whether there was a lease of ``holder``'s to give up.
    """
    table = schema.job_leases
    return conn.execute(delete(table).where(table.c.job == job, table.c.holder == holder)).rowcount > 0


def current_lease(conn: Connection, job: str, now: datetime) -> Lease | None:
    """``job``'s lease if one is in force at ``now``; None when nobody holds it."""
    table = schema.job_leases
    row = conn.execute(select(table).where(table.c.job == job, table.c.expires_at > to_iso(now))).first()
    if row is None:
        return None
    return Lease(row.job, row.holder, from_iso(row.acquired_at), from_iso(row.expires_at))
