"""The store's connection to its database: SQLite by default, PostgreSQL for a fleet.

Every write runs in one transaction that also bumps the generation counter, so a request that fails
leaves nothing half-written and edges learn about every committed change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, Engine, Table, create_engine, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from originlock.store import schema
from originlock.store.migrate import migrate, startup_lock
from originlock.store.sealing import KeySealer

__all__ = ["Store", "from_iso", "insert_or_conflict", "now_iso", "to_iso"]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def to_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def now_iso() -> str:
    return to_iso(datetime.now(UTC))


# Both backends spell "INSERT ... ON CONFLICT" the same way (SQLite since 3.24, PostgreSQL since 9.5), but
# SQLAlchemy Core only offers it per dialect; the two constructs take the same arguments.
_INSERTS: dict[str, Callable[[Table], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def insert_or_conflict(conn: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """``INSERT INTO table`` with ``on_conflict_do_nothing``/``on_conflict_do_update`` for ``conn``'s backend.

    For rows that two fleet nodes may write at the same instant: the database settles the race in one
    statement, where a read-then-insert would fail one node's whole transaction on the unique key.
    """
    return _INSERTS[conn.dialect.name](table)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred,
        # which deadlocks when two writers both upgrade a read lock).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed write survives the process being killed right after the API answered.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("originlock_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: str) -> Engine:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    search_path = query.pop("schema", None)
    scheme = "postgresql+psycopg"
    clean = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    connect_args: dict[str, Any] = {}
    if search_path is not None:
        if not _SCHEMA_NAME.match(search_path):
            raise ValueError("schema= in the store URL must be a lower-case SQL identifier")
        connect_args["options"] = f"-csearch_path={search_path}"
    engine = create_engine(clean, connect_args=connect_args, pool_pre_ping=True)
    if search_path is not None:
        with engine.begin() as conn:
            # Under the lock: two concurrent CREATE SCHEMA IF NOT EXISTS can both find it missing, and then
            # one fails on pg_namespace's unique index.
            startup_lock(conn)
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{search_path}"'))
    return engine


class Store:
    """Owns the engine and the key sealer; hands out read and write connections."""

    def __init__(self, url: str, sealer: KeySealer, *, fips: bool = False) -> None:
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url)
        elif url.startswith(("postgresql", "postgres")):
            self.engine = _postgres_engine(url)
        else:
            raise ValueError(
                f"unsupported store URL scheme in {url.split(':', 1)[0]!r}: use sqlite:// or postgresql://"
            )
        self.sealer = sealer
        #: Deployment-wide FIPS profile (``serve --fips``): every zone behaves as if its ``fips`` setting were on.
        self.fips = fips
        self.backend = self.engine.dialect.name
        with self.write() as conn:
            migrate(conn)

    def __repr__(self) -> str:
        return f"Store(backend={self.backend})"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction: commits and bumps the generation on success, rolls everything back on error."""
        with self.engine.connect().execution_options(originlock_write=True) as conn, conn.begin():
            yield conn
            conn.execute(update(schema.generation).values(value=schema.generation.c.value + 1))

    @contextmanager
    def status_write(self) -> Iterator[Connection]:
        """One transaction that leaves the generation alone: commits on success, rolls back on error.

        For rows no snapshot is built from (monitor verdicts, job leases, delivery claims): bumping the
        generation for them would make every edge process recompile its snapshot (and unseal every key).
        """
        with self.engine.connect().execution_options(originlock_write=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def generation(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(schema.generation.c.value)).scalar_one()
            conn.rollback()
            return int(value)

    def close(self) -> None:
        self.engine.dispose()
