"""Zone settings: every one Cloudflare lists (store/setting_catalog.py), with its values and defaults."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from originlock.store import schema
from originlock.store.db import insert_or_conflict, now_iso
from originlock.store.errors import Invalid
from originlock.store.fips import non_fips_certificates
from originlock.store.setting_catalog import SETTINGS, SettingSpec, validate_value
from originlock.store.zones import get_zone

__all__ = [
    "SETTINGS",
    "SettingSpec",
    "SettingValue",
    "get_setting",
    "list_settings",
    "set_setting",
    "zone_settings_map",
]


#: Internal settings stored alongside; not addressable through /settings/{id}.
AOP_ZONE_ENABLED = "origin_tls_client_auth"


@dataclass(frozen=True)
class SettingValue:
    id: str
    value: Any
    modified_on: str | None


def _get_raw(conn: Connection, zone_id: str, setting_id: str) -> tuple[Any, str | None] | None:
    row = conn.execute(
        select(schema.zone_settings.c.value, schema.zone_settings.c.modified_on).where(
            schema.zone_settings.c.zone_id == zone_id, schema.zone_settings.c.setting_id == setting_id
        )
    ).first()
    return (json.loads(row.value), row.modified_on) if row else None


def _put_raw(conn: Connection, zone_id: str, setting_id: str, value: Any) -> str:
    """Store ``value``; returns its ``modified_on``."""
    now = now_iso()
    encoded = json.dumps(value)
    table = schema.zone_settings
    # One upsert: two first writes of the same setting at once (an update finding no row, then two inserts)
    # made the second one fail on the primary key (a 500); the database settles it in one statement.
    stmt = insert_or_conflict(conn, table).values(
        zone_id=zone_id, setting_id=setting_id, value=encoded, modified_on=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.zone_id, table.c.setting_id],
        set_={"value": stmt.excluded.value, "modified_on": stmt.excluded.modified_on},
    )
    conn.execute(stmt)
    return now


def _spec(setting_id: str) -> SettingSpec:
    spec = SETTINGS.get(setting_id)
    if spec is None:
        raise Invalid(f"Unrecognized zone setting name: {setting_id}", 1006)
    return spec


def get_setting(conn: Connection, zone_id: str, setting_id: str) -> SettingValue:
    get_zone(conn, zone_id)
    spec = _spec(setting_id)
    raw = _get_raw(conn, zone_id, setting_id)
    return SettingValue(setting_id, raw[0], raw[1]) if raw else SettingValue(setting_id, spec.default, None)


def list_settings(conn: Connection, zone_id: str) -> list[SettingValue]:
    return [get_setting(conn, zone_id, setting_id) for setting_id in SETTINGS]


def set_setting(conn: Connection, zone_id: str, setting_id: str, value: Any) -> SettingValue:
    get_zone(conn, zone_id)
    spec = _spec(setting_id)
    raw = _get_raw(conn, zone_id, setting_id)
    value = validate_value(setting_id, spec, value, raw[0] if raw else spec.default)
    if setting_id == "fips" and value == "on":
        refused = non_fips_certificates(conn, zone_id)
        if refused:
            raise Invalid(f"FIPS profile: delete or replace the certificates it would refuse first: {refused}", 1419)
    # What was just written, without reading it back (two more round trips on every PATCH's critical path).
    return SettingValue(setting_id, value, _put_raw(conn, zone_id, setting_id, value))


def zone_settings_map(conn: Connection, zone_id: str) -> dict[str, Any]:
    """Every setting's effective value, for the snapshot."""
    values = {setting_id: spec.default for setting_id, spec in SETTINGS.items()}
    rows = conn.execute(select(schema.zone_settings).where(schema.zone_settings.c.zone_id == zone_id))
    for row in rows:
        values[row.setting_id] = json.loads(row.value)
    values.setdefault(AOP_ZONE_ENABLED, False)
    return values


def get_aop_zone_enabled(conn: Connection, zone_id: str) -> bool:
    get_zone(conn, zone_id)
    raw = _get_raw(conn, zone_id, AOP_ZONE_ENABLED)
    return bool(raw[0]) if raw else False


def set_aop_zone_enabled(conn: Connection, zone_id: str, enabled: bool) -> bool:
    get_zone(conn, zone_id)
    _put_raw(conn, zone_id, AOP_ZONE_ENABLED, enabled)
    return enabled
