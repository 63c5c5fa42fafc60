"""DNS records: a proxied A, AAAA or CNAME record is how a hostname maps to its origin."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from originlock.store import schema
from originlock.store.db import now_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.zones import get_zone, new_id, normalize_hostname

__all__ = ["RecordInput", "create_record", "delete_record", "get_record", "list_records", "update_record"]

RECORD_TYPES = ("A", "AAAA", "CNAME")
#: Cloudflare: ttl 1 means "automatic"; otherwise 30..86400 seconds (60 minimum outside Enterprise).
TTL_AUTO = 1
TTL_MIN, TTL_MAX = 30, 86400


@dataclass(frozen=True)
class RecordInput:
    type: str
    name: str
    content: str
    ttl: int = TTL_AUTO
    proxied: bool = False
    comment: str | None = None


def _full_name(name: str, zone_name: str) -> str:
    value = name.strip().rstrip(".").lower()
    if value in ("@", ""):
        return zone_name
    if value != zone_name and not value.endswith("." + zone_name):
        value = f"{value}.{zone_name}"
    return normalize_hostname(value, wildcard=True)


def _validate(record: RecordInput, zone_name: str) -> dict[str, Any]:
    if record.type not in RECORD_TYPES:
        raise Invalid(f"type {record.type!r} is not supported; use one of {', '.join(RECORD_TYPES)}", 1004)
    name = _full_name(record.name, zone_name)
    content = record.content.strip()
    if record.type in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(content)
        except ValueError:
            raise Invalid(
                f"content for {record.type} record is invalid: {content!r} is not an IP address", 9005
            ) from None
        if (record.type == "A") != (address.version == 4):
            raise Invalid(
                f"content for {record.type} record must be an IPv{4 if record.type == 'A' else 6} address", 9005
            )
        content = str(address)
    else:
        content = normalize_hostname(content, what="content")
        if content == name:
            raise Invalid("a CNAME record cannot point to itself", 9007)
    if record.ttl != TTL_AUTO and not TTL_MIN <= record.ttl <= TTL_MAX:
        raise Invalid(f"ttl must be 1 (automatic) or between {TTL_MIN} and {TTL_MAX}", 9021)
    return {
        "type": record.type,
        "name": name,
        "content": content,
        # Proxied records always have automatic TTL at Cloudflare.
        "ttl": TTL_AUTO if record.proxied else record.ttl,
        "proxied": record.proxied,
        "comment": record.comment,
    }


def _check_conflicts(conn: Connection, zone_id: str, values: dict[str, Any], exclude_id: str | None) -> None:
    query = select(schema.dns_records).where(
        schema.dns_records.c.zone_id == zone_id, schema.dns_records.c.name == values["name"]
    )
    for other in conn.execute(query):
        if other.id == exclude_id:
            continue
        if other.type == values["type"] and other.content == values["content"]:
            raise Invalid("An identical record already exists.", 81058)
        if "CNAME" in (other.type, values["type"]):
            raise Invalid("An A, AAAA, or CNAME record with that host already exists.", 81053)
        if other.proxied != values["proxied"]:
            # One hostname is either proxied or not: the edge could not honour a mix.
            raise Invalid(f"records for {values['name']} must all be proxied or all be DNS-only", 81053)


def create_record(conn: Connection, zone_id: str, record: RecordInput) -> Row[Any]:
    zone = get_zone(conn, zone_id)
    values = _validate(record, zone.name)
    _check_conflicts(conn, zone_id, values, None)
    now = now_iso()
    record_id = new_id()
    conn.execute(
        insert(schema.dns_records).values(id=record_id, zone_id=zone_id, created_on=now, modified_on=now, **values)
    )
    return get_record(conn, zone_id, record_id)


def get_record(conn: Connection, zone_id: str, record_id: str) -> Row[Any]:
    get_zone(conn, zone_id)
    row = conn.execute(
        select(schema.dns_records).where(schema.dns_records.c.zone_id == zone_id, schema.dns_records.c.id == record_id)
    ).first()
    if row is None:
        raise NotFound(f"DNS record {record_id} not found", 81044)
    return row


def list_records(
    conn: Connection,
    zone_id: str,
    *,
    filters: dict[str, Any],
    offset: int,
    limit: int,
) -> tuple[list[Row[Any]], int]:
    zone = get_zone(conn, zone_id)
    query = select(schema.dns_records).where(schema.dns_records.c.zone_id == zone_id)
    for key in ("type", "content", "proxied"):
        if filters.get(key) is not None:
            query = query.where(schema.dns_records.c[key] == filters[key])
    if filters.get("name") is not None:
        query = query.where(schema.dns_records.c.name == _full_name(filters["name"], zone.name))
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(
        query.order_by(schema.dns_records.c.name, schema.dns_records.c.created_on).offset(offset).limit(limit)
    )
    return list(rows), int(total)


def update_record(conn: Connection, zone_id: str, record_id: str, record: RecordInput) -> Row[Any]:
    zone = get_zone(conn, zone_id)
    get_record(conn, zone_id, record_id)
    values = _validate(record, zone.name)
    _check_conflicts(conn, zone_id, values, record_id)
    conn.execute(
        update(schema.dns_records).where(schema.dns_records.c.id == record_id).values(modified_on=now_iso(), **values)
    )
    return get_record(conn, zone_id, record_id)


def delete_record(conn: Connection, zone_id: str, record_id: str) -> None:
    get_record(conn, zone_id, record_id)
    conn.execute(delete(schema.dns_records).where(schema.dns_records.c.id == record_id))
