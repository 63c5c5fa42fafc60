"""The origin exposure monitor's records: one row per (zone, hostname) in ``origin_checks``.

These rows are observations, not configuration: nothing the edge serves depends on them. So they are
written with :func:`status_write`, a write transaction that does **not** bump the store generation;
bumping it would make every edge process recompile its snapshot (and unseal every key) after each
check.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, select, update

from originlock.store import schema
from originlock.store.db import Store, from_iso, to_iso

__all__ = [
    "OriginCheck",
    "check_json",
    "delete_checks",
    "get_check",
    "list_checks",
    "monitor_opted_out_zones",
    "put_check",
    "status_write",
]

#: Zone setting id (see ``store/settings.py``); duplicated as a string to keep this module's imports small.
_OPT_OUT_SETTING = "origin_exposure_monitor"


@dataclass(frozen=True)
class OriginCheck:
    zone_id: str
    zone_name: str
    hostname: str
    #: ``address:port`` the check connected to.
    origin: str
    verdict: str
    reasons: tuple[str, ...]
    checked_at: datetime
    previous_verdict: str | None
    changed_at: datetime | None


@contextmanager
def status_write(store: Store) -> Iterator[Connection]:
    """A write transaction for observations: commits on success, rolls back on error, generation untouched."""
    with store.status_write() as conn:
        yield conn


def _from_row(row: Row[Any]) -> OriginCheck:
    return OriginCheck(
        zone_id=row.zone_id,
        zone_name=row.zone_name,
        hostname=row.hostname,
        origin=row.origin,
        verdict=row.verdict,
        reasons=tuple(json.loads(row.reasons)),
        checked_at=from_iso(row.checked_at),
        previous_verdict=row.previous_verdict,
        changed_at=from_iso(row.changed_at) if row.changed_at else None,
    )


def _select() -> Any:
    checks, zones = schema.origin_checks, schema.zones
    return select(checks, zones.c.name.label("zone_name")).join(zones, zones.c.id == checks.c.zone_id)


def get_check(conn: Connection, zone_id: str, hostname: str) -> OriginCheck | None:
    checks = schema.origin_checks
    row = conn.execute(_select().where(checks.c.zone_id == zone_id, checks.c.hostname == hostname)).first()
    return _from_row(row) if row is not None else None


def list_checks(conn: Connection, zone_id: str | None = None) -> list[OriginCheck]:
    """Every record, or one zone's, sorted by zone name then hostname."""
    checks, zones = schema.origin_checks, schema.zones
    query = _select().order_by(zones.c.name, checks.c.hostname)
    if zone_id is not None:
        query = query.where(checks.c.zone_id == zone_id)
    return [_from_row(row) for row in conn.execute(query)]


def put_check(conn: Connection, check: OriginCheck) -> None:
    """Insert or replace the record of ``(check.zone_id, check.hostname)``."""
    table = schema.origin_checks
    values = {
        "origin": check.origin,
        "verdict": check.verdict,
        "reasons": json.dumps(list(check.reasons)),
        "checked_at": to_iso(check.checked_at),
        "previous_verdict": check.previous_verdict,
        "changed_at": to_iso(check.changed_at) if check.changed_at else None,
    }
    where = and_(table.c.zone_id == check.zone_id, table.c.hostname == check.hostname)
    if conn.execute(update(table).where(where).values(**values)).rowcount == 0:
        conn.execute(insert(table).values(zone_id=check.zone_id, hostname=check.hostname, **values))


def delete_checks(conn: Connection, keys: Iterable[tuple[str, str]]) -> int:
    """Delete the records of these ``(zone_id, hostname)`` pairs; returns how many went."""
    table = schema.origin_checks
    removed = 0
    for zone_id, hostname in keys:
        removed += conn.execute(delete(table).where(table.c.zone_id == zone_id, table.c.hostname == hostname)).rowcount
    return removed


def monitor_opted_out_zones(conn: Connection) -> frozenset[str]:
    """Ids of zones whose ``origin_exposure_monitor`` setting is ``off``."""
    table = schema.zone_settings
    rows = conn.execute(select(table.c.zone_id, table.c.value).where(table.c.setting_id == _OPT_OUT_SETTING))
    return frozenset(row.zone_id for row in rows if json.loads(row.value) == "off")


def check_json(check: OriginCheck) -> dict[str, Any]:
    """The API's shape of one record (``GET .../origin_tls_client_auth/exposure``)."""
    return {
        "hostname": check.hostname,
        "origin": check.origin,
        "verdict": check.verdict,
        "reasons": list(check.reasons),
        "checked_at": to_iso(check.checked_at),
        "previous_verdict": check.previous_verdict,
        "changed_at": to_iso(check.changed_at) if check.changed_at else None,
    }
