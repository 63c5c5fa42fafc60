"""Fewer round trips on a change's way to the edges: reads without a transaction, pings skipped (PostgreSQL)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from originlock.store.db import Store
from originlock.store.deadline import SNAPSHOT_TIMEOUTS, StoreTimeouts
from originlock.store.request_scope import request_scope
from originlock.store.sealing import KeySealer

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(pg_base_url: str) -> Iterator[str]:
    schema = f"ol_rt_{secrets.token_hex(5)}"
    Store(f"{pg_base_url}?schema={schema}", KeySealer(secrets.token_bytes(32))).close()  # migrated
    yield f"{pg_base_url}?schema={schema}"
    from tests.conftest import drop_schema

    drop_schema(schema)


def _pings(store: Store) -> list[int]:
    pings: list[int] = []
    dialect: Any = store.engine.dialect
    real = dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        pings.append(1)
        return bool(real(dbapi_conn))

    dialect.do_ping = counted
    return pings


def test_a_connection_used_seconds_ago_is_not_pinged_and_the_api_pings_always(url: str) -> None:
    sealer = KeySealer(secrets.token_bytes(32))
    snapshots = Store(url, sealer, timeouts=SNAPSHOT_TIMEOUTS, migrate_schema=False)
    api = Store(url, sealer, timeouts=StoreTimeouts(), migrate_schema=False)
    try:
        for store, expected in ((snapshots, 0), (api, 3)):
            pings = _pings(store)
            for _ in range(3):
                assert store.generation() >= 0
            assert len(pings) == expected, store.timeouts
        # A connection idle past ping_idle is pinged again before use.
        lazy = Store(url, sealer, timeouts=StoreTimeouts(ping_idle=0.05), migrate_schema=False)
        pings = _pings(lazy)
        lazy.generation()
        lazy.generation()
        assert pings == []
        time.sleep(0.1)
        lazy.generation()
        assert pings == [1]
        lazy.close()
    finally:
        snapshots.close()
        api.close()


def test_an_inconsistent_read_runs_each_statement_on_its_own(url: str) -> None:
    store = Store(url, KeySealer(secrets.token_bytes(32)), migrate_schema=False)
    query = text("SELECT now(), pg_sleep(0.02)")
    try:
        with store.read(consistent=False) as conn:
            first, second = conn.execute(query).scalar_one(), conn.execute(query).scalar_one()
            assert second > first  # a new transaction per statement: no BEGIN, no ROLLBACK
        with store.read() as conn:
            first, second = conn.execute(query).scalar_one(), conn.execute(query).scalar_one()
            assert second == first  # one transaction (on the same pooled connection: back out of autocommit)
    finally:
        store.close()


def test_an_api_request_pings_once_and_the_next_request_pings_again(url: str) -> None:
    """Inside one request's scope a connection the store answered on since it began is not pinged again."""
    api = Store(url, KeySealer(secrets.token_bytes(32)), timeouts=StoreTimeouts(), migrate_schema=False)
    try:
        api.generation()  # a pooled connection (a new one is not pinged: it has just connected)
        pings = _pings(api)
        with request_scope():
            for _ in range(3):
                assert api.generation() >= 0
            with api.write() as conn:
                conn.execute(text("SELECT 1"))
        assert pings == [1]  # the first checkout only
        with request_scope():
            api.generation()
        assert pings == [1, 1]  # a new request: the connection was last used before it began
        api.generation()
        api.generation()
        assert pings == [1, 1, 1, 1]  # outside a request every checkout pings, as before
    finally:
        api.close()
