"""DNS records: a zone's full record set. A proxied A, AAAA or CNAME record is how a hostname maps to its origin;
every other type is stored and returned as Cloudflare would (store/dns_types.py validates them)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from originlock.store import schema
from originlock.store.db import now_iso
from originlock.store.dns_query import RecordQuery, apply_query
from originlock.store.dns_types import PROXIABLE, RECORD_TYPES, normalise, record_name
from originlock.store.errors import Invalid, NotFound
from originlock.store.stamps import new_id
from originlock.store.zones import get_zone

__all__ = [
    "RECORD_TYPES",
    "RecordInput",
    "all_records",
    "create_record",
    "delete_record",
    "get_record",
    "list_records",
    "update_record",
]

#: Cloudflare: ttl 1 means "automatic"; otherwise 30..86400 seconds (60 minimum outside Enterprise).
TTL_AUTO = 1
TTL_MIN, TTL_MAX = 30, 86400
COMMENT_MAX = 500
TAGS_MAX, TAG_LEN_MAX = 100, 255
SETTING_KEYS = ("ipv4_only", "ipv6_only", "flatten_cname")


@dataclass(frozen=True)
class RecordInput:
    type: str
    name: str
    content: str | None
    ttl: int = TTL_AUTO
    proxied: bool = False
    comment: str | None = None
    tags: tuple[str, ...] = ()
    data: dict[str, Any] | None = None
    priority: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _full_name(name: str, zone_name: str) -> str:
    return record_name(name, zone_name)


def _tags(tags: tuple[str, ...]) -> list[str]:
    if len(tags) > TAGS_MAX:
        raise Invalid(f"a record has at most {TAGS_MAX} tags", 1004)
    out: list[str] = []
    for tag in tags:
        name, sep, value = tag.partition(":")
        if not name.strip() or len(tag) > TAG_LEN_MAX:
            raise Invalid(f"tag {tag[:40]!r} must be <name>:<value> with a non-empty name", 1004)
        normal = f"{name.strip().lower()}{sep}{value}"
        if normal not in out:
            out.append(normal)
    return sorted(out)


def _validate(record: RecordInput, zone_name: str) -> dict[str, Any]:
    rtype = record.type.upper()
    if rtype not in RECORD_TYPES:
        raise Invalid(f"type {record.type!r} is not a DNS record type; use one of {', '.join(RECORD_TYPES)}", 1004)
    name = _full_name(record.name, zone_name)
    if record.proxied and rtype not in PROXIABLE:
        raise Invalid(f"{rtype} records cannot be proxied; only {', '.join(PROXIABLE)} can", 9004)
    payload = normalise(rtype, record.content, record.data, record.priority)
    if rtype == "CNAME" and payload.content == name:
        raise Invalid("a CNAME record cannot point to itself", 9007)
    if record.ttl != TTL_AUTO and not TTL_MIN <= record.ttl <= TTL_MAX:
        raise Invalid(f"ttl must be 1 (automatic) or between {TTL_MIN} and {TTL_MAX}", 9021)
    if record.comment is not None and len(record.comment) > COMMENT_MAX:
        raise Invalid(f"comment must be at most {COMMENT_MAX} characters", 1004)
    unknown = set(record.settings) - set(SETTING_KEYS)
    if unknown:
        raise Invalid(f"unknown record setting {sorted(unknown)[0]!r}; one of {', '.join(SETTING_KEYS)}", 1004)
    return {
        "type": rtype,
        "name": name,
        "content": payload.content,
        # Proxied records always have automatic TTL at Cloudflare.
        "ttl": TTL_AUTO if record.proxied else record.ttl,
        "proxied": record.proxied,
        "comment": record.comment,
        "priority": payload.priority,
        "data": json.dumps(payload.data) if payload.data is not None else None,
        "tags": json.dumps(_tags(record.tags)),
        "settings": json.dumps({k: v for k, v in record.settings.items() if v is not None}),
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
        if other.type in PROXIABLE and values["type"] in PROXIABLE and other.proxied != values["proxied"]:
            # One hostname is either proxied or not: the edge could not honour a mix.
            raise Invalid(f"records for {values['name']} must all be proxied or all be DNS-only", 81053)


def create_record(conn: Connection, zone_id: str, record: RecordInput, record_id: str | None = None) -> Row[Any]:
    zone = get_zone(conn, zone_id)
    values = _validate(record, zone.name)
    _check_conflicts(conn, zone_id, values, None)
    now = now_iso()
    record_id = record_id or new_id()
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


def all_records(conn: Connection, zone_id: str) -> list[Row[Any]]:
    get_zone(conn, zone_id)
    query = select(schema.dns_records).where(schema.dns_records.c.zone_id == zone_id)
    return list(conn.execute(query.order_by(schema.dns_records.c.name, schema.dns_records.c.created_on)))


def list_records(
    conn: Connection, zone_id: str, *, query: RecordQuery, offset: int, limit: int
) -> tuple[list[Row[Any]], int]:
    zone = get_zone(conn, zone_id)
    if "exact" in query.name:
        # A relative name ("app") means the same as everywhere else in the API: under the zone.
        try:
            exact = _full_name(query.name["exact"], zone.name)
        except Invalid:
            exact = query.name["exact"]  # not a valid name: it matches nothing, which is the right answer
        query = replace(query, name={**query.name, "exact": exact})
    selected = apply_query(all_records(conn, zone_id), query)
    return selected[offset : offset + limit], len(selected)


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


def as_input(row: Row[Any]) -> RecordInput:
    """A stored record as the input that would write it again (PATCH merges into this)."""
    return RecordInput(
        type=row.type,
        name=row.name,
        content=row.content,
        ttl=row.ttl,
        proxied=bool(row.proxied),
        comment=row.comment,
        tags=tuple(json.loads(row.tags or "[]")),
        data=json.loads(row.data) if row.data else None,
        priority=row.priority,
        settings=json.loads(row.settings or "{}"),
    )
