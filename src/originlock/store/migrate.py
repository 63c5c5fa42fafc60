"""Numbered schema migrations, applied in order, recorded in ``meta.schema_version``.

Migration 1 creates the schema as first shipped. Every later change to ``schema.py`` ships with a new
migration here that alters an existing database to match; migrations check before they alter, so a
database created by a newer migration 1 is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, insert, select, update

from originlock.store import schema

__all__ = ["LATEST", "migrate"]


def _m1_initial(conn: Connection) -> None:
    schema.metadata.create_all(conn)
    conn.execute(insert(schema.generation).values(id=1, value=1))


def _create_missing_tables(conn: Connection) -> None:
    # create_all only creates tables that do not exist yet: adding a table needs nothing more.
    schema.metadata.create_all(conn, checkfirst=True)


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _m1_initial),
    (2, _create_missing_tables),  # origin_certs (Origin CA)
    (3, _create_missing_tables),  # rulesets, custom_certificates, origin_checks, alert_*
    (4, _create_missing_tables),  # ruleset_versions
    (5, _create_missing_tables),  # job_leases
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "meta"):
        return 0
    row = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
    return int(row[0]) if row else 0


def migrate(conn: Connection) -> int:
    """Bring the schema to :data:`LATEST` inside the caller's transaction; returns the version reached."""
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
