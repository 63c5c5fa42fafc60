"""Numbered schema migrations, applied in order, recorded in ``meta.schema_version``.

Migration 1 creates the schema as first shipped. Every later change to ``schema.py`` ships with a new
migration here that alters an existing database to match; migrations check before they alter, so a
database created by a newer migration 1 is left as it is.

Theory of operation (fleet start): several nodes may start at the same moment on one PostgreSQL database,
each finding the schema empty or at an older version. Left alone, all of them would read "version N" and run
the same DDL and inserts; every one but the first would fail on a unique key or "relation already exists".
So on PostgreSQL each node first takes :func:`startup_lock`, a transaction-level advisory lock, and only then
reads the version: the first node migrates while the others wait, and when its transaction commits (releasing
the lock) the next one reads the version it left and has nothing to do. ``bootstrap`` takes the same lock
around its first-start singletons (account, admin token, CAs) for the same reason. SQLite needs nothing:
every write transaction starts with ``BEGIN IMMEDIATE``, one writer at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import Connection, bindparam, insert, inspect, select, text, update

from originlock.store import schema
from originlock.store.stamps import to_iso

__all__ = ["LATEST", "backfill_not_before", "migrate", "startup_lock", "startup_lock_key"]

#: Names the lock among any other advisory locks taken in the same database (they share one key space).
STARTUP_LOCK_NAME = b"originlock.store.startup"


def startup_lock_key(search_path: str) -> int:
    """The advisory-lock key (a signed 64-bit integer) for nodes whose tables live in ``search_path``.

    The key covers the schema as well as the constant name, so stores in different schemas of one
    database (the test suite puts each test in its own) never wait for one another; nodes of one fleet
    share a URL, hence a search path, hence the key. A hash (SHA-256, not Python's salted ``hash()``) keeps
    it the same in every process and every Python version.
    """
    digest = hashlib.sha256(STARTUP_LOCK_NAME + b"\0" + search_path.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def startup_lock(conn: Connection) -> None:
    """On PostgreSQL, wait for and take this schema's startup lock until ``conn``'s transaction ends.

    Transaction-level (``pg_advisory_xact_lock``) rather than session-level: it is released exactly when
    the work it guards commits (so the next node sees that work), and a rollback, a failed statement or a
    dead node's closed connection can never leave it held. Several calls in one transaction are fine (the
    lock is re-entrant). On SQLite this does nothing.

    Call it before the transaction reads anything it then decides on: under READ COMMITTED (PostgreSQL's
    default, which the store keeps) every statement after the lock sees what the previous holder committed;
    under REPEATABLE READ the snapshot would date from before the wait.

    The schema is the server's ``search_path`` setting (``?schema=NAME`` in the store URL sets it per
    connection, see ``db.py``), read rather than ``current_schema()`` because it is already set before the
    schema itself has been created.
    """
    if conn.dialect.name != "postgresql":
        return
    search_path = conn.execute(text("SELECT current_setting('search_path')")).scalar_one()
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": startup_lock_key(str(search_path))})


def _m1_initial(conn: Connection) -> None:
    schema.metadata.create_all(conn)
    conn.execute(insert(schema.generation).values(id=1, value=1))


def _create_missing_tables(conn: Connection) -> None:
    # create_all only creates tables that do not exist yet: adding a table needs nothing more.
    schema.metadata.create_all(conn, checkfirst=True)


def _m6_token_details(conn: Connection) -> None:
    _create_missing_tables(conn)
    # Every existing token gets the policy its flat permissions and zones meant (the model enforcement reads).
    # Imported here: store.tokens imports store.db, which runs these migrations.
    from originlock.store.tokens import backfill_details

    backfill_details(conn)


def _dns_full_record_set(conn: Connection) -> None:
    """Every DNS record type: wider ``type`` and ``content``, plus ``priority``, ``data``, ``tags``, ``settings``;
    and ``accounts.settings`` (``PUT /accounts/{id}``).

    Checks before it alters (a database created by a newer migration 1 already has all of it). Also creates the
    ``audit_events`` table.
    """
    _create_missing_tables(conn)
    have = {c["name"] for c in inspect(conn).get_columns("dns_records")}
    added = {
        "priority": "INTEGER",
        "data": "TEXT",
        "tags": "TEXT NOT NULL DEFAULT '[]'",
        "settings": "TEXT NOT NULL DEFAULT '{}'",
    }
    for name, ddl in added.items():
        if name not in have:
            conn.execute(text(f"ALTER TABLE dns_records ADD COLUMN {name} {ddl}"))
    if "settings" not in {c["name"] for c in inspect(conn).get_columns("accounts")}:
        conn.execute(text("ALTER TABLE accounts ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'"))
    if conn.dialect.name == "postgresql":
        # SQLite does not enforce VARCHAR lengths; PostgreSQL does.
        conn.execute(text("ALTER TABLE dns_records ALTER COLUMN type TYPE VARCHAR(16)"))
        conn.execute(text("ALTER TABLE dns_records ALTER COLUMN content TYPE TEXT"))


def _m9_aop_not_before(conn: Connection) -> None:
    """``aop_certs.not_before``: the certificate's notBefore, filled here for the rows already stored.

    A snapshot compile read it from each certificate's PEM, a parse per client certificate (10k of them were a
    tenth of a cold start at 100k hostnames). Checks before it alters: a database created by a newer migration 1
    has the column (and no rows yet).
    """
    _create_missing_tables(conn)  # as every migration since 2: a table missing from an older database
    if "not_before" not in {c["name"] for c in inspect(conn).get_columns("aop_certs")}:
        conn.execute(text("ALTER TABLE aop_certs ADD COLUMN not_before VARCHAR(32)"))
    backfill_not_before(conn)


def backfill_not_before(conn: Connection) -> int:
    """Fill ``aop_certs.not_before`` where it is NULL from the stored certificate; returns the rows filled.

    Also what an operator can run again after a rolling upgrade, for rows an older node wrote meanwhile (the
    compile parses those itself, so they are only slower, never wrong).
    """
    from cryptography.x509 import load_pem_x509_certificate  # the migration's only: not on every store's import

    table = schema.aop_certs
    filled = []
    for cert_id, pem in conn.execute(select(table.c.id, table.c.certificate).where(table.c.not_before.is_(None))):
        try:
            not_before = load_pem_x509_certificate(pem.encode()).not_valid_before_utc
        except ValueError:
            continue  # validated at upload; a row that no longer parses stays NULL (the compile reports it)
        filled.append({"cert_id": cert_id, "not_before": to_iso(not_before)})
    if filled:
        conn.execute(
            update(table).where(table.c.id == bindparam("cert_id")).values(not_before=bindparam("not_before")),
            filled,
        )
    return len(filled)


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _m1_initial),
    (2, _create_missing_tables),  # origin_certs (Origin CA)
    (3, _create_missing_tables),  # rulesets, custom_certificates, origin_checks, alert_*
    (4, _create_missing_tables),  # ruleset_versions
    (5, _create_missing_tables),  # job_leases
    (6, _m6_token_details),  # api_token_details, filled for existing tokens
    (7, _create_missing_tables),  # change_log, edge_nodes (fleet)
    (8, _dns_full_record_set),  # dns_records: all types, tags...; accounts.settings; audit_events
    (9, _m9_aop_not_before),  # aop_certs.not_before, filled for existing certificates
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "meta"):
        return 0
    row = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
    return int(row[0]) if row else 0


def migrate(conn: Connection) -> int:
    """Bring the schema to :data:`LATEST` inside the caller's transaction; returns the version reached.

    On PostgreSQL it first waits for the schema's :func:`startup_lock`, so that the version it reads is the
    one any node migrating at the same moment committed; the lock is held until the caller commits.
    """
    startup_lock(conn)
    version = current_version(conn)
    if version > LATEST:
        raise RuntimeError(
            f"database schema version {version} is newer than this originlock ({LATEST}); upgrade originlock"
        )
    for number, step in MIGRATIONS:
        if number <= version:
            continue
        step(conn)
        if number == 1:
            conn.execute(insert(schema.meta).values(key="schema_version", value="1"))
        else:
            conn.execute(update(schema.meta).where(schema.meta.c.key == "schema_version").values(value=str(number)))
        version = number
    return version
