"""Accounts and zones."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from originlock.store import schema
from originlock.store.changes import note_zone
from originlock.store.errors import Invalid, NotFound
from originlock.store.stamps import new_id, now_iso

__all__ = [
    "create_account",
    "create_zone",
    "delete_zone",
    "get_zone",
    "list_accounts",
    "list_zones",
    "normalize_hostname",
    "update_zone",
]

# RFC 1035 labels (plus leading "*." handled by callers); Cloudflare zones are registrable names.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
ZONE_TYPES = ("full", "partial", "secondary")


def normalize_hostname(name: str, *, what: str = "name", wildcard: bool = False) -> str:
    value = name.strip().rstrip(".").lower()
    check = value[2:] if wildcard and value.startswith("*.") else value
    if len(value) > 253 or not _HOSTNAME.match(check):
        raise Invalid(f"{what} {name!r} is not a valid hostname", 1004)
    return value


def create_account(conn: Connection, name: str, account_id: str | None = None) -> str:
    account_id = account_id or new_id()
    conn.execute(insert(schema.accounts).values(id=account_id, name=name, created_on=now_iso()))
    return account_id


def list_accounts(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(schema.accounts).order_by(schema.accounts.c.created_on)))


def create_zone(conn: Connection, *, name: str, account_id: str, zone_type: str = "full") -> Row[Any]:
    zone_name = normalize_hostname(name)
    if zone_type not in ZONE_TYPES:
        raise Invalid(f"type must be one of {', '.join(ZONE_TYPES)}", 1004)
    if conn.execute(select(schema.accounts.c.id).where(schema.accounts.c.id == account_id)).first() is None:
        raise Invalid(f"account {account_id} does not exist", 1002)
    if conn.execute(select(schema.zones.c.id).where(schema.zones.c.name == zone_name)).first() is not None:
        raise Invalid(f"{zone_name} already exists", 1061)
    now = now_iso()
    zone_id = new_id()
    conn.execute(
        insert(schema.zones).values(
            id=zone_id,
            account_id=account_id,
            name=zone_name,
            type=zone_type,
            paused=False,
            created_on=now,
            modified_on=now,
        )
    )
    return get_zone(conn, zone_id)


def get_zone(conn: Connection, zone_id: str) -> Row[Any]:
    row = conn.execute(select(schema.zones).where(schema.zones.c.id == zone_id)).first()
    if row is None:
        raise NotFound(f"zone {zone_id} not found", 1001)
    note_zone(conn, zone_id)  # a write that looks its zone up changes that zone (store/changes.py)
    return row


#: Cloudflare's ``name`` filter operators (``name=contains:.org``); ``equal`` is the default.
NAME_OPERATORS = (
    "equal",
    "not_equal",
    "starts_with",
    "ends_with",
    "contains",
    "starts_with_case_sensitive",
    "ends_with_case_sensitive",
    "contains_case_sensitive",
)
ZONE_ORDERS = ("name", "status", "account.id", "account.name", "plan.id")
#: A self-hosted zone is active from the moment it is added: there is no delegation to wait for.
ZONE_STATUS = "active"


def name_filter(expression: str) -> tuple[str, str]:
    """``"starts_with:dev"`` -> ``("starts_with", "dev")``; a bare name is ``equal``."""
    op, sep, operand = expression.partition(":")
    if sep and op in NAME_OPERATORS:
        return op, operand
    return "equal", expression


def _name_matches(name: str, op: str, operand: str) -> bool:
    if not op.endswith("_case_sensitive"):
        operand = operand.lower()
    base = op.removesuffix("_case_sensitive")
    operand = operand.rstrip(".") if base in ("equal", "not_equal", "ends_with") else operand
    if base == "equal":
        return name == operand
    if base == "not_equal":
        return name != operand
    if base == "starts_with":
        return name.startswith(operand)
    if base == "ends_with":
        return name.endswith(operand)
    return operand in name


def list_zones(
    conn: Connection,
    *,
    name: str | None = None,
    account_id: str | None = None,
    account_name: str | None = None,
    status: str | None = None,
    zone_ids: list[str] | None = None,
    match: str = "all",
    order: str = "name",
    order_desc: bool = False,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[Row[Any]], int]:
    """Zones matching Cloudflare's list filters; ``match=any`` ORs the filters, the token's scope always applies."""
    query = select(schema.zones, schema.accounts.c.name.label("account_name")).join(
        schema.accounts, schema.accounts.c.id == schema.zones.c.account_id
    )
    if zone_ids is not None:
        query = query.where(schema.zones.c.id.in_(zone_ids))
    checks: list[bool | None] = []
    rows = list(conn.execute(query))
    selected = []
    for row in rows:
        checks = []
        if name is not None:
            checks.append(_name_matches(row.name, *name_filter(name)))
        if account_id is not None:
            checks.append(row.account_id == account_id)
        if account_name is not None:
            checks.append(_name_matches(row.account_name.lower(), *name_filter(account_name)))
        if status is not None:
            checks.append(status == ZONE_STATUS)
        if not checks or (all(checks) if match == "all" else any(checks)):
            selected.append(row)
    keys = {
        "name": lambda r: r.name,
        "status": lambda r: (ZONE_STATUS, r.name),
        "account.id": lambda r: (r.account_id, r.name),
        "account.name": lambda r: (r.account_name, r.name),
        "plan.id": lambda r: r.name,
    }
    selected.sort(key=keys[order], reverse=order_desc)
    return selected[offset : offset + limit], len(selected)


def update_zone(conn: Connection, zone_id: str, *, paused: bool | None, zone_type: str | None) -> Row[Any]:
    get_zone(conn, zone_id)
    values: dict[str, Any] = {"modified_on": now_iso()}
    if paused is not None:
        values["paused"] = paused
    if zone_type is not None:
        if zone_type not in ZONE_TYPES:
            raise Invalid(f"type must be one of {', '.join(ZONE_TYPES)}", 1004)
        values["type"] = zone_type
    conn.execute(update(schema.zones).where(schema.zones.c.id == zone_id).values(**values))
    return get_zone(conn, zone_id)


def delete_zone(conn: Connection, zone_id: str) -> None:
    get_zone(conn, zone_id)
    # Children first: SQLite enforces ON DELETE CASCADE only with foreign_keys=ON, and being explicit
    # keeps both backends identical.
    for table in (
        schema.ruleset_versions,
        schema.rulesets,
        schema.hostname_associations,
        schema.aop_certs,
        schema.zone_settings,
        schema.dns_records,
    ):
        conn.execute(delete(table).where(table.c.zone_id == zone_id))
    conn.execute(delete(schema.zones).where(schema.zones.c.id == zone_id))
