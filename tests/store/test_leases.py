"""The job lease contract, run unchanged on SQLite and PostgreSQL: one holder at a time, taken over after
expiry, renewed by its holder, given up on release; decided in the database even when nodes ask at once."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from originlock.server.leadership import JobLease
from originlock.store import schema
from originlock.store.db import Store
from originlock.store.leases import current_lease, release, try_acquire
from originlock.store.migrate import LATEST, current_version
from originlock.store.sealing import KeySealer

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
TTL = timedelta(seconds=90)
SEALER = KeySealer(os.urandom(32))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    made = Store(store_url, SEALER)
    yield made
    made.close()


def acquire(store: Store, holder: str, now: datetime, job: str = "alerts") -> bool:
    with store.status_write() as conn:
        return try_acquire(conn, job, holder, now, TTL)


def holder_at(store: Store, now: datetime, job: str = "alerts") -> str | None:
    with store.read() as conn:
        lease = current_lease(conn, job, now)
    return lease.holder if lease else None


def test_one_holder_until_expiry_then_the_other(store: Store) -> None:
    assert acquire(store, "a", T0)
    assert not acquire(store, "b", T0)
    assert not acquire(store, "b", T0 + TTL - timedelta(microseconds=1))  # still a's, to the microsecond
    assert holder_at(store, T0 + TTL / 2) == "a"
    assert acquire(store, "b", T0 + TTL)  # a stopped renewing (died): b takes over at expiry
    assert holder_at(store, T0 + TTL) == "b"
    assert not acquire(store, "a", T0 + TTL + timedelta(seconds=1))  # a coming back does not take it back
    # Jobs are independent: b holding "alerts" says nothing about "rotation".
    assert acquire(store, "a", T0 + TTL, job="rotation")


def test_the_holder_renews_and_keeps_its_start(store: Store) -> None:
    assert acquire(store, "a", T0)
    assert acquire(store, "a", T0 + TTL / 2)  # renewed: now lasts until T0 + 1.5 TTL
    assert not acquire(store, "b", T0 + TTL)  # the first expiry has passed, the renewed one has not
    assert acquire(store, "a", T0 + TTL * 2)  # expired, but nobody took it: the holder renews
    with store.read() as conn:
        lease = current_lease(conn, "alerts", T0 + TTL * 2)
    assert lease is not None
    assert (lease.holder, lease.acquired_at, lease.expires_at) == ("a", T0, T0 + TTL * 3)
    assert acquire(store, "b", T0 + TTL * 3)
    with store.read() as conn:
        taken = current_lease(conn, "alerts", T0 + TTL * 3)
    assert taken is not None and taken.acquired_at == T0 + TTL * 3  # a new holder's lease starts afresh


def test_release_hands_over_at_once_and_only_by_the_holder(store: Store) -> None:
    assert acquire(store, "a", T0)
    with store.status_write() as conn:
        assert not release(conn, "alerts", "b")  # not b's to give up
    assert not acquire(store, "b", T0 + timedelta(seconds=1))
    with store.status_write() as conn:
        assert release(conn, "alerts", "a")
    assert holder_at(store, T0) is None
    assert acquire(store, "b", T0 + timedelta(seconds=1))  # long before a's lease would have run out


def test_lease_writes_do_not_bump_the_generation(store: Store) -> None:
    generation = store.generation()
    assert acquire(store, "a", T0) and acquire(store, "a", T0 + TTL / 2)
    with store.status_write() as conn:
        release(conn, "alerts", "a")
    assert store.generation() == generation  # renewing every minute must not rebuild every edge's snapshot


def test_nodes_asking_at_once_get_one_holder(store_url: str) -> None:
    # Each "node" has its own engine, as separate processes would.
    nodes = [Store(store_url, SEALER) for _ in range(6)]
    barrier = threading.Barrier(len(nodes))
    won: list[str] = []

    def ask(index: int) -> None:
        barrier.wait()
        if acquire(nodes[index], f"node-{index}", T0):
            won.append(f"node-{index}")

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:
        assert len(won) == 1 and holder_at(nodes[0], T0) == won[0]
    finally:
        for node in nodes:
            node.close()


def test_a_renewal_fences_the_rest_of_its_transaction(store_url: str) -> None:
    """Work done in the same transaction as a renewal cannot overlap another node's: until it commits,
    another node asking — even after the old lease's expiry — waits and then finds the renewed lease."""
    a, b = Store(store_url, SEALER), Store(store_url, SEALER)
    try:
        assert acquire(a, "a", T0)
        result: list[bool] = []
        with a.write() as conn:
            assert try_acquire(conn, "alerts", "a", T0 + TTL - timedelta(seconds=1), TTL)
            asker = threading.Thread(target=lambda: result.append(acquire(b, "b", T0 + TTL + timedelta(seconds=1))))
            asker.start()
            asker.join(timeout=0.3)  # b is blocked behind a's open transaction, not answered yet
            assert result == []
        asker.join(timeout=30)
        assert result == [False] and holder_at(b, T0 + TTL + timedelta(seconds=1)) == "a"
    finally:
        a.close()
        b.close()


def test_job_lease_logs_changes_and_releases(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="originlock.leadership")
    a = JobLease(store, "rotation", "node-a", TTL)
    b = JobLease.for_period(store, "rotation", "node-b", 30)
    assert b.ttl == TTL and repr(a) == "JobLease(job='rotation', holder='node-a', ttl=90s)"
    assert a.hold(T0) and a.hold(T0 + timedelta(seconds=60)) and a.held
    assert not b.hold(T0 + timedelta(seconds=61)) and not b.held
    a.release()
    assert b.hold(T0 + timedelta(seconds=62))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "rotation: this node (node-a) runs the job",  # once, not at every renewal
        "rotation: another node runs the job; this node (node-b) stands by",
        "rotation: this node (node-b) runs the job",
    ]
    with pytest.raises(ValueError):
        JobLease(store, "rotation", "node-a", timedelta(0))
    assert JobLease.for_period(store, "x", "n", 0.01).ttl == timedelta(seconds=1)  # floored


def test_migration_adds_the_lease_table_to_an_older_database(store_url: str) -> None:
    Store(store_url, SEALER).close()
    older = Store(store_url, SEALER)
    with older.write() as conn:  # make it look like a database from before leases
        schema.job_leases.drop(conn)
        conn.execute(update(schema.meta).where(schema.meta.c.key == "schema_version").values(value=str(LATEST - 1)))
    older.close()
    store = Store(store_url, SEALER)
    try:
        with store.read() as conn:
            assert current_version(conn) == LATEST
            assert conn.execute(select(schema.job_leases)).all() == []
        assert acquire(store, "a", T0)
        with store.status_write() as conn:
            conn.execute(delete(schema.job_leases))
    finally:
        store.close()
