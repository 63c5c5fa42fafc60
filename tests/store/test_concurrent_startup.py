"""Fleet nodes that start at the same moment on one PostgreSQL schema: the schema is created and migrated once,
and the first-start singletons (the account, the admin token, the deployment CAs) exist once, whoever wins.

Nodes are threads here (each with its own engine and connections, as separate processes would have); the
end-to-end version with real `originlock serve` processes is in tests/alerts/test_fleet_serve.py.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from sqlalchemy import func, select, update

from originlock.server.bootstrap import ADMIN_TOKEN_ENV, MASTER_KEY_ENV, Deployment, bootstrap
from originlock.store import schema
from originlock.store.db import Store
from originlock.store.migrate import LATEST, current_version, startup_lock_key
from originlock.store.pki import CA_NAMES
from originlock.store.sealing import KeySealer

NODES = 6
#: Long enough for six nodes to create the schema and the CAs one after another on a slow CI machine.
DEADLINE = 120.0
SEALER = KeySealer(secrets.token_bytes(32))

T = TypeVar("T")


def _all_at_once(count: int, start: Callable[[int], T]) -> list[T]:
    """Run ``start(i)`` for ``i in range(count)`` in as many threads, released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T:
        barrier.wait()
        return start(i)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(run, i) for i in range(count)]
        # .result() re-raises a node's failure (a unique violation, "relation already exists") here.
        return [f.result(timeout=DEADLINE) for f in futures]


def _open(url: str) -> Store:
    return Store(url, SEALER)


def _counts(url: str) -> dict[str, Any]:
    store = _open(url)
    try:
        with store.read() as conn:
            return {
                "version": current_version(conn),
                "accounts": conn.execute(select(func.count()).select_from(schema.accounts)).scalar_one(),
                "tokens": conn.execute(select(func.count()).select_from(schema.api_tokens)).scalar_one(),
                "pki": sorted(conn.execute(select(schema.pki.c.name)).scalars()),
                "generation_rows": conn.execute(select(func.count()).select_from(schema.generation)).scalar_one(),
            }
    finally:
        store.close()


EXPECTED_PKI = sorted([*(f"{name}-ca" for name in CA_NAMES), "origin-pull-leaf"])


@pytest.mark.parametrize("token_from_env", [False, True], ids=["generated-token", "token-from-env"])
@pytest.mark.parametrize("schema_state", ["empty", "migrated"])
def test_nodes_bootstrapping_at_once_create_each_singleton_once(
    tmp_path: Path, pg_schema_factory: Any, monkeypatch: pytest.MonkeyPatch, token_from_env: bool, schema_state: str
) -> None:
    url = pg_schema_factory("ol_race")
    if schema_state == "migrated":
        # Tables in place but nothing bootstrapped (a node that died between the two): only bootstrap races.
        _open(url).close()
    monkeypatch.setenv(MASTER_KEY_ENV, secrets.token_hex(32))
    if token_from_env:
        monkeypatch.setenv(ADMIN_TOKEN_ENV, "race-admin-" + secrets.token_hex(16))
    else:
        monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)

    deployments: list[Deployment] = _all_at_once(NODES, lambda i: bootstrap(tmp_path / f"node{i}", url))
    try:
        # Every node uses the one account the winner created, and the one set of CAs.
        assert len({d.account_id for d in deployments}) == 1
        fingerprints = set()
        for d in deployments:
            with d.store.read() as conn:
                fingerprints.add(
                    tuple(conn.execute(select(schema.pki.c.cert_pem).order_by(schema.pki.c.name)).scalars())
                )
        assert len(fingerprints) == 1
        if not token_from_env:
            # The secret is shown once: by the node that created it, and by no other.
            assert sum(d.new_admin_token is not None for d in deployments) == 1
    finally:
        for d in deployments:
            d.store.close()

    counts = _counts(url)
    assert counts == {
        "version": LATEST,
        "accounts": 1,
        "tokens": 1,
        "pki": EXPECTED_PKI,
        "generation_rows": 1,
    }


def _make_old_schema(url: str, version: int) -> None:
    """A database as an older originlock left it: version ``version``, without the job_leases table."""
    store = _open(url)
    try:
        with store.write() as conn:
            schema.job_leases.drop(conn)
            conn.execute(update(schema.meta).where(schema.meta.c.key == "schema_version").values(value=str(version)))
    finally:
        store.close()


def test_nodes_upgrading_an_older_schema_at_once_migrate_it_once(pg_schema_factory: Any) -> None:
    url = pg_schema_factory("ol_upgrade")
    _make_old_schema(url, LATEST - 1)

    stores = _all_at_once(NODES, lambda _: _open(url))
    for store in stores:
        store.close()

    store = _open(url)
    try:
        with store.read() as conn:
            assert current_version(conn) == LATEST
            assert conn.execute(select(func.count()).select_from(schema.job_leases)).scalar_one() == 0
            versions = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version"))
            assert list(versions.scalars()) == [str(LATEST)]
    finally:
        store.close()


def test_nodes_migrating_two_different_schemas_at_once_neither_deadlock_nor_collide(pg_schema_factory: Any) -> None:
    urls = [pg_schema_factory("ol_left"), pg_schema_factory("ol_right")]
    per_schema = 3

    started = time.monotonic()
    stores = _all_at_once(2 * per_schema, lambda i: _open(urls[i % 2]))
    for store in stores:
        store.close()
    assert time.monotonic() - started < DEADLINE

    for url in urls:
        store = _open(url)
        try:
            with store.read() as conn:
                assert current_version(conn) == LATEST
                assert conn.execute(select(func.count()).select_from(schema.generation)).scalar_one() == 1
        finally:
            store.close()


def _hold_startup_lock(base_url: str, schema_name: str) -> psycopg.Connection[Any]:
    """A connection in an open transaction holding ``schema_name``'s startup lock, as a starting node would."""
    conn = psycopg.connect(base_url, options=f"-csearch_path={schema_name}")
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (startup_lock_key(schema_name),))
    return conn


def test_the_startup_lock_holds_back_its_own_schema_only(pg_base_url: str, pg_schema_factory: Any) -> None:
    busy_url, free_url = pg_schema_factory("ol_busy"), pg_schema_factory("ol_free")
    busy_schema = busy_url.rsplit("schema=", 1)[1]
    holder = _hold_startup_lock(pg_base_url, busy_schema)
    try:
        with ThreadPoolExecutor(2) as pool:
            busy = pool.submit(_open, busy_url)
            free = pool.submit(_open, free_url)
            # Another schema's lock is another key: this node starts while the busy schema is held.
            free.result(timeout=30).close()
            time.sleep(0.5)
            # A node of the busy schema waits for the holder (a node still migrating) to finish...
            assert not busy.done()
            holder.rollback()
            # ...and then goes ahead.
            busy.result(timeout=30).close()
    finally:
        holder.close()


def test_a_node_outwaits_a_long_migration_of_another(pg_base_url: str, pg_schema_factory: Any) -> None:
    """The start-up lock held longer than a request may take (API_TIMEOUTS: 2 s lock, 3 s transaction), as by
    a node migrating a large schema on a busy machine: the waiting node starts once it is released, instead
    of failing on its lock or idle-in-transaction timeout."""
    url = pg_schema_factory("ol_slow")
    holder = _hold_startup_lock(pg_base_url, url.rsplit("schema=", 1)[1])
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_open, url)
            time.sleep(4.5)
            assert not waiting.done(), waiting.exception() if waiting.done() else None
            holder.rollback()
            store = waiting.result(timeout=60)
        try:
            with store.read() as conn:
                assert current_version(conn) == LATEST
                # The migration's wider limits were for its own transaction: requests keep theirs.
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "3s"
        finally:
            store.close()
    finally:
        holder.close()
