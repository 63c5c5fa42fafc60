"""What a committed write changed, as edges need to know it: its generation and the zones it touched.

Theory of operation. Every :meth:`Store.write <originlock.store.db.Store.write>` attaches a
:class:`ChangeTracker` to its connection. The tracker watches the statements the transaction executes
(a SQLAlchemy ``before_execute`` hook) and sorts the tables they modify:

- tables no snapshot is built from (tokens, audit log, alert policies, ruleset history, ...): ignored;
- zone-scoped tables (zones, DNS records, settings, AOP certificates and associations, custom
  certificates, rulesets): the zone ids in the statement's parameters, plus every zone the transaction
  looked up through :func:`note_zone` (``store.zones.get_zone`` does), are the zones it changed;
- deployment-wide tables (the CAs, Origin CA revocations), raw SQL, or a zone-scoped statement whose zone
  the tracker cannot tell: the change is marked ``everything`` and edges rebuild their whole snapshot.

Erring on the side of "more zones" or "everything" costs a longer rebuild, never a stale edge.

At commit the :class:`Change` is announced: on PostgreSQL with ``NOTIFY`` on a channel named after the
schema (delivered to every listening node after the commit, in commit order, together with the
generation bump whose row lock orders the commits); on SQLite the writing process calls its in-process
hooks (``Store.committed_hooks``), and other processes poll the generation.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, event, func, insert, literal, select
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause

from originlock.store import schema

__all__ = [
    "Change",
    "ChangeTracker",
    "channel_name",
    "detach",
    "install_tracking",
    "note_zone",
    "parse_payload",
]

#: Tables the snapshot reads per zone, and the parameter names that carry the zone id in their statements.
ZONE_TABLES = {
    "zones": ("id",),
    "dns_records": ("zone_id",),
    "zone_settings": ("zone_id",),
    "aop_certs": ("zone_id",),
    "hostname_associations": ("zone_id",),
    "custom_certificates": ("zone_id",),
    "rulesets": ("zone_id",),
}
#: Tables the snapshot reads for the whole deployment: a change there rebuilds everything.
#: (Account-level rulesets apply to every zone of their account: rebuilding everything is simplest and rare.)
GLOBAL_TABLES = frozenset({"pki", "origin_certs", "account_rulesets"})
#: NOTIFY payloads are limited to 8000 bytes; a change touching more zones than fit is sent as "everything".
MAX_PAYLOAD = 7900
_TRACKER = "originlock_changes"
_WRITE_SQL = re.compile(r"^\s*(insert|update|delete|alter|create|drop|truncate)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Change:
    """One committed write as edges see it."""

    generation: int
    #: Zones whose configuration may have changed.
    zones: frozenset[str] = frozenset()
    #: The change could not be scoped to zones: rebuild the whole snapshot.
    everything: bool = False
    #: The writer's wall clock just before its commit (Unix seconds), when known: nodes report how long
    #: after it they served the change (``originlock_snapshot_change_delay_seconds``).
    at: float | None = field(default=None, compare=False)
    #: Which :class:`~originlock.store.db.Store` committed it (``Store.writer_id``): a process whose own
    #: hooks deliver its writes skips their NOTIFY (``server/store_snapshots.py``).
    writer: str | None = field(default=None, compare=False)

    @property
    def touches_snapshot(self) -> bool:
        return self.everything or bool(self.zones)

    def payload(self) -> str:
        stamp: dict[str, Any] = {} if self.at is None else {"t": round(self.at, 6)}
        if self.writer is not None:
            stamp["w"] = self.writer
        body = json.dumps({"g": self.generation, "z": sorted(self.zones), "a": self.everything, **stamp})
        if len(body) > MAX_PAYLOAD:
            body = json.dumps({"g": self.generation, "z": [], "a": True, **stamp})
        return body


def parse_payload(payload: str) -> Change | None:
    """The :class:`Change` in a NOTIFY payload; None for a payload this version does not understand."""
    try:
        data = json.loads(payload)
        at = data.get("t")
        writer = data.get("w")
        return Change(
            int(data["g"]),
            frozenset(str(z) for z in data["z"]),
            bool(data["a"]),
            float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None,
            writer if isinstance(writer, str) else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass
class ChangeTracker:
    zones: set[str] = field(default_factory=set)
    everything: bool = False
    #: A zone-scoped statement without a zone id in its parameters (resolved at finish).
    unscoped: bool = False
    #: Any table the snapshot reads was modified.
    relevant: bool = False

    @classmethod
    def attach(cls, conn: Connection) -> ChangeTracker:
        tracker = cls()
        conn.info[_TRACKER] = tracker
        return tracker

    def finish(self, generation: int, at: float | None = None) -> Change:
        everything = self.everything or (self.unscoped and not self.zones)
        zones = frozenset(self.zones) if self.relevant and not everything else frozenset()
        return Change(generation, zones, everything, at)

    def saw(self, conn: Connection, statement: Any, multiparams: Any, params: Any) -> None:
        if isinstance(statement, TextClause | str):
            if _WRITE_SQL.match(str(statement)):
                self.everything = True
            return
        if not isinstance(statement, UpdateBase):
            return
        table = getattr(statement, "table", None)
        name = getattr(table, "name", "")
        if name in GLOBAL_TABLES:
            self.everything = True
            return
        keys = ZONE_TABLES.get(name)
        if keys is None:
            return
        self.relevant = True
        found = _zone_ids(conn, statement, keys, multiparams, params)
        if found:
            self.zones |= found
        else:
            self.unscoped = True


def _zone_ids(
    conn: Connection, statement: UpdateBase, keys: tuple[str, ...], multiparams: Any, params: Any
) -> set[str]:
    values: list[tuple[str, Any]] = list(statement.compile(dialect=conn.dialect).params.items())
    for batch in (multiparams or []), [params or {}]:
        for item in batch:
            if isinstance(item, dict):
                values.extend(item.items())
    found = set()
    for name, value in values:
        base = name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name
        if base in keys and isinstance(value, str):
            found.add(value)
    return found


def note_zone(conn: Connection, zone_id: str) -> None:
    """Record that the current write transaction (if any) works on ``zone_id``."""
    tracker = conn.info.get(_TRACKER)
    if tracker is not None:
        tracker.zones.add(zone_id)


def install_tracking(engine: Engine) -> None:
    """Feed every statement run under a tracker to it (once per engine)."""

    @event.listens_for(engine, "before_execute")
    def _before(conn: Connection, statement: Any, multiparams: Any, params: Any, _options: Any) -> None:
        tracker = conn.info.get(_TRACKER)
        if tracker is not None:
            tracker.saw(conn, statement, multiparams, params)


def channel_name(schema: str | None) -> str:
    """The NOTIFY channel of one store: one per schema, so stores sharing a database stay apart."""
    return f"originlock_{schema or 'public'}"


def detach(conn: Connection) -> None:
    """End tracking on ``conn`` (its ``info`` outlives the transaction: it belongs to the pooled connection)."""
    # An invalidated connection (the watchdog cut it) refuses even ``info``: nothing is left to detach then.
    with contextlib.suppress(Exception):
        conn.info.pop(_TRACKER, None)


#: Generations kept in ``change_log``: a node that fell further behind rebuilds its whole snapshot.
CHANGE_LOG_KEEP = 5000


def record(conn: Connection, change: Change, at: str, channel: str | None = None) -> None:
    """Log ``change`` in its transaction (every generation gets a row, so gaps are visible); with
    ``channel`` (PostgreSQL) also queue its NOTIFY, in the same statement (sent at commit, never on rollback)."""
    table = schema.change_log
    row = insert(table).values(
        generation=change.generation, zones=json.dumps(sorted(change.zones)), everything=change.everything, at=at
    )
    if channel is not None and conn.dialect.name == "postgresql" and change.touches_snapshot:
        # One round trip for both, on every write's critical path: the NOTIFY goes out at commit, like the row.
        logged = row.returning(table.c.generation).cte("logged")
        notify = func.pg_notify(literal(channel), literal(change.payload()))
        conn.execute(select(notify).select_from(logged))
    else:
        conn.execute(row)
    if change.generation % 100 == 0:  # prune now and then, not on every write
        conn.execute(delete(table).where(table.c.generation <= change.generation - CHANGE_LOG_KEEP))


def read_since(conn: Connection, generation: int) -> tuple[int, list[Change] | None]:
    """The store's generation and the changes after ``generation``; None when the log no longer reaches
    back that far (the caller rebuilds everything)."""
    current = int(conn.execute(select(schema.generation.c.value)).scalar_one())
    if current <= generation:
        return current, []
    table = schema.change_log
    rows = conn.execute(
        select(table).where(table.c.generation > generation, table.c.generation <= current).order_by(table.c.generation)
    ).all()
    if len(rows) != current - generation:
        return current, None
    return current, [Change(r.generation, frozenset(json.loads(r.zones)), bool(r.everything)) for r in rows]
