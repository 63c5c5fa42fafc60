"""The store's connection to its database: SQLite by default, PostgreSQL for a fleet.

Every write runs in one transaction that also bumps the generation counter, so a request that fails
leaves nothing half-written and edges learn about every committed change.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, Engine, Table, create_engine, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, InternalError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from originlock.store import schema
from originlock.store.breaker import Breaker
from originlock.store.changes import Change, ChangeTracker, channel_name, detach, install_tracking, record
from originlock.store.connect_wait import ConnectTimedOut, connect_within
from originlock.store.deadline import (
    API_TIMEOUTS,
    MIGRATION_SECONDS,
    StoreTimeouts,
    Watchdog,
    WatchdogTicket,
    widen_server_limits,
)
from originlock.store.errors import Conflict, StoreUnavailable
from originlock.store.migrate import migrate, startup_lock
from originlock.store.request_scope import after_response, request_started
from originlock.store.sealing import KeySealer
from originlock.store.stamps import from_iso, now_iso, to_iso  # the store's moments; re-exported

__all__ = ["CONFLICT_CODE", "UNAVAILABLE_CODE", "Store", "from_iso", "insert_or_conflict", "now_iso", "to_iso"]

#: v4 error codes of a 503 (store outage) and a 409 (a race the store could not settle): originlock's own,
#: in the style of the 10xxx codes Cloudflare gives to generic HTTP conditions.
UNAVAILABLE_CODE = 10503
CONFLICT_CODE = 10409

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Key in a pooled connection's ``info``: when its last use ended (``StoreTimeouts.ping_idle``).
_USED_AT = "originlock_used_at"


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


def _sqlite_engine(url: str, timeouts: StoreTimeouts) -> Engine:
    # The busy timeout is how long a writer queues behind another (SQLite admits one at a time).
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeouts.transaction})

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


def _postgres_engine(url: str, timeouts: StoreTimeouts, watchdog: Watchdog) -> Engine:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    search_path = query.pop("schema", None)
    scheme = "postgresql+psycopg"
    clean = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    options = timeouts.server_options()
    if search_path is not None:
        if not _SCHEMA_NAME.match(search_path):
            raise ValueError("schema= in the store URL must be a lower-case SQL identifier")
        options += f" -csearch_path={search_path}"
    connect_args: dict[str, Any] = {
        "options": options,
        "connect_timeout": max(2, round(timeouts.connect)),
        # A dead peer (not a hanging one: that is the watchdog's) is noticed in seconds, not at TCP's 2 h.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
    }
    engine = create_engine(
        clean,
        connect_args=connect_args,
        pool_timeout=timeouts.pool,
        pool_size=10,
        max_overflow=10,
        # The connection returned last is handed out first: an API request's next checkout usually gets
        # the one its token lookup just used, and skips the ping (store/request_scope.py).
        pool_use_lifo=True,
    )

    if timeouts.connect_wait is not None:
        wait = timeouts.connect_wait

        @event.listens_for(engine, "do_connect")
        def _connect_within(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            try:
                return connect_within(lambda: dialect.connect(*cargs, **cparams), wait)
            except ConnectTimedOut as exc:
                # The driver's own error type: SQLAlchemy wraps it as for a refused connection.
                raise dialect.loaded_dbapi.OperationalError(str(exc)) from exc

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_conn: Any, record: Any) -> None:
        record.info[_USED_AT] = time.monotonic()  # a new connection needs no ping

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        # An invalidated connection (a failure, the watchdog's cut) loses its ``info``: it is pinged again.
        record.info[_USED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        used_at = record.info.get(_USED_AT)
        if used_at is not None and time.monotonic() - used_at < timeouts.ping_idle:
            return
        started = request_started()
        if used_at is not None and started is not None and used_at >= started:
            return  # the store answered on it during this API request (store/request_scope.py)
        # SQLAlchemy's pool_pre_ping, under a deadline: its ping waits forever on a hanging network.
        ticket = watchdog.arm(dbapi_conn.pgconn.socket, timeouts.ping)
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            if ticket.fired:
                # Hanging, not stale: a new connection would hang too (up to libpq's 2 s), so fail now.
                record.invalidate(exc)
                raise StoreHung("the store did not answer a ping") from exc
            # A stale connection (the server restarted): the pool discards it and opens a new one.
            raise DisconnectionError("stale store connection") from exc
        finally:
            watchdog.disarm(ticket)

    return engine


def _create_schema(engine: Engine, url: str) -> None:
    search_path = dict(parse_qsl(urlsplit(url).query)).get("schema")
    if search_path is None:
        return
    with engine.begin() as conn:
        widen_server_limits(conn, MIGRATION_SECONDS)
        # Under the lock: two concurrent CREATE SCHEMA IF NOT EXISTS can both find it missing, and then
        # one fails on pg_namespace's unique index.
        startup_lock(conn)
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{search_path}"'))


#: Timeouts of one statement (query_canceled, lock_not_available) and deadlocks: load on a store that
#: answers, so a 503 for this request but no breaker for the others.
_LOAD_SQLSTATES = frozenset({"57014", "55P03", "40P01"})
#: The server ended a session whose transaction sat idle past ``idle_in_transaction_session_timeout`` (or
#: ran past PostgreSQL 17's ``transaction_timeout``): the client was too slow between two statements (a
#: loaded machine), racing its own watchdog set to the same deadline. psycopg files both under
#: InternalError, which would otherwise be a 500; nothing was committed, so it is a 503 like the watchdog's.
_SESSION_ENDED_SQLSTATES = frozenset({"25P03", "25P04"})


class StoreHung(Exception):
    """A pooled connection's ping ran past its deadline."""


#: Failures that mean "the store could not be used": connection refused or lost, a timeout (pool, statement,
#: lock, the watchdog's cut), a server shutting down. Nothing was committed when one of these is raised
#: before COMMIT returned.
_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, StoreHung)


class Store:
    """Owns the engine and the key sealer; hands out read and write connections.

    Every transaction is bounded (:class:`~originlock.store.deadline.StoreTimeouts`): it commits within
    ``timeouts.transaction`` seconds of its start or is rolled back, and a store that refuses, hangs or
    times out surfaces as :class:`~originlock.store.errors.StoreUnavailable` (the API's 503).
    """

    def __init__(
        self,
        url: str,
        sealer: KeySealer,
        *,
        fips: bool = False,
        timeouts: StoreTimeouts = API_TIMEOUTS,
        migrate_schema: bool = True,
    ) -> None:
        self.url = url
        self.timeouts = timeouts
        self._watchdog = Watchdog()
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url, timeouts)
        elif url.startswith(("postgresql", "postgres")):
            self.engine = _postgres_engine(url, timeouts, self._watchdog)
        else:
            raise ValueError(
                f"unsupported store URL scheme in {url.split(':', 1)[0]!r}: use sqlite:// or postgresql://"
            )
        self.sealer = sealer
        #: Deployment-wide FIPS profile (``serve --fips``): every zone behaves as if its ``fips`` setting were on.
        self.fips = fips
        self.backend = self.engine.dialect.name
        self.breaker = Breaker(self._probe, enabled=self.backend == "postgresql")
        install_tracking(self.engine)
        #: The PostgreSQL NOTIFY channel of this store's schema (``store/changes.py``).
        self.channel = channel_name(dict(parse_qsl(urlsplit(url).query)).get("schema"))
        #: Called after each committed :meth:`write` with its new generation and what it changed
        #: (``store/changes.py``); the snapshot sources of this process listen here.
        self.committed_hooks: list[Callable[[Change], None]] = []
        #: Stamped on this store's changes and their NOTIFY (``Change.writer``).
        self.writer_id = secrets.token_hex(6)
        #: The generation of this store's last write, set just before its commit (its hooks may wait for the
        #: API's response): a SQLite source woken by the file at the commit tells its own process's writes
        #: by it (server/store_snapshots.py).
        self.committed_generation = 0
        # Without migrate_schema nothing touches the database here: a node may start while it is unreachable.
        if migrate_schema:
            try:
                # Not within a request's few seconds (API_TIMEOUTS): a migration on a busy machine, or a wait
                # for another node's start-up lock, takes longer.
                if self.backend == "postgresql":
                    _create_schema(self.engine, url)
                with self.write(timeout=MIGRATION_SECONDS) as conn:
                    if self.backend == "postgresql":
                        widen_server_limits(conn, MIGRATION_SECONDS)
                    migrate(conn)
            except BaseException:
                self.close()  # nobody gets this handle: its breaker's probe must not go on trying the store
                raise

    def __repr__(self) -> str:
        return f"Store(backend={self.backend})"

    def companion(self, timeouts: StoreTimeouts) -> Store:
        """Another handle on the same database with its own connection pool and timeouts (the snapshot
        builder must not queue behind, or starve, the API's requests)."""
        return Store(self.url, self.sealer, fips=self.fips, timeouts=timeouts, migrate_schema=False)

    @contextmanager
    def _transaction(
        self, *, write: bool, timeout: float | None = None, autocommit: bool = False
    ) -> Iterator[Connection]:
        if self.breaker.is_open:
            raise StoreUnavailable("the store is unreachable; retry shortly", UNAVAILABLE_CODE)
        ticket: WatchdogTicket | None = None
        try:
            conn = self.engine.connect()
            try:
                if write:
                    conn = conn.execution_options(originlock_write=True)
                dbapi = conn.connection.dbapi_connection
                fd = dbapi.pgconn.socket if self.backend == "postgresql" and dbapi is not None else None
                ticket = self._watchdog.arm(fd, self.timeouts.transaction if timeout is None else timeout)
                if autocommit:
                    # Each statement is its own transaction: no BEGIN and no ROLLBACK round trips.
                    yield conn.execution_options(isolation_level="AUTOCOMMIT")
                    return
                with conn.begin() as tx:
                    yield conn
                    if time.monotonic() >= ticket.deadline:
                        # Past its deadline the caller may have given up: roll back rather than apply late.
                        tx.rollback()
                        raise StoreUnavailable(
                            "the store did not answer in time; nothing was changed", UNAVAILABLE_CODE
                        )
            finally:
                if ticket is not None:
                    self._watchdog.disarm(ticket)
                conn.close()
        except _UNAVAILABLE as exc:
            if getattr(getattr(exc, "orig", None), "sqlstate", None) not in _LOAD_SQLSTATES:
                self.breaker.trip(type(exc).__name__)
            raise StoreUnavailable(
                "the store is unreachable or timed out; nothing was changed", UNAVAILABLE_CODE
            ) from exc
        except InternalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _SESSION_ENDED_SQLSTATES:
                raise
            raise StoreUnavailable("the store did not answer in time; nothing was changed", UNAVAILABLE_CODE) from exc
        except IntegrityError as exc:
            raise Conflict("a concurrent change conflicted with this one; retry", CONFLICT_CODE) from exc

    def _probe(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(select(schema.generation.c.value)).scalar_one()
            conn.rollback()

    @contextmanager
    def write(self, timeout: float | None = None) -> Iterator[Connection]:
        """One transaction: commits and bumps the generation on success, rolls everything back on error;
        ``timeout`` overrides the store's transaction deadline for this one."""
        with self._transaction(write=True, timeout=timeout) as conn:
            tracker = ChangeTracker.attach(conn)
            try:
                yield conn
                bump = update(schema.generation).values(value=schema.generation.c.value + 1)
                generation = conn.execute(bump.returning(schema.generation.c.value)).scalar_one()
                change = replace(tracker.finish(int(generation), time.time()), writer=self.writer_id)
                detach(conn)
                record(conn, change, now_iso(), self.channel)  # and its NOTIFY (PostgreSQL)
                # Before the commit: a process woken by the file at the commit must find it set already.
                self.committed_generation = max(self.committed_generation, change.generation)
            finally:
                detach(conn)
        # Inside an API request this process's hooks (its edge's refresh) run once the response is out.
        if self.committed_hooks and not after_response(lambda: self._run_hooks(change)):
            self._run_hooks(change)

    def _run_hooks(self, change: Change) -> None:
        for hook in self.committed_hooks:
            hook(change)

    @contextmanager
    def status_write(self) -> Iterator[Connection]:
        """One transaction that leaves the generation alone: commits on success, rolls back on error.

        For rows no snapshot is built from (monitor verdicts, job leases, delivery claims): bumping the
        generation for them would make every edge process recompile its snapshot (and unseal every key).
        """
        with self._transaction(write=True) as conn:
            yield conn

    @contextmanager
    def read(self, timeout: float | None = None, *, consistent: bool = True) -> Iterator[Connection]:
        """A read transaction; ``timeout`` overrides the store's transaction deadline for this one.

        ``consistent=False``: on PostgreSQL the statements run without a transaction (two fewer round
        trips), each seeing what was committed when it ran, so two of them may see different states. For
        readers that a later change corrects anyway: an incremental refresh reads a zone that a write
        committed meanwhile changed, and that write's own notification makes it read the zone again.
        SQLite keeps the transaction (no round trips to save).
        """
        autocommit = not consistent and self.backend == "postgresql"
        with self._transaction(write=False, timeout=timeout, autocommit=autocommit) as conn:
            yield conn

    def generation(self) -> int:
        with self.read() as conn:
            return int(conn.execute(select(schema.generation.c.value)).scalar_one())

    def close(self) -> None:
        self.breaker.stop()
        self.engine.dispose()
