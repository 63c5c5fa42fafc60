"""/zones/{zone_id}/dns_records: A, AAAA and CNAME with proxied, ttl and comment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import Row

from originlock.api.deps import DnsEdit, DnsRead, RecordsPage, StoreDep
from originlock.api.envelope import ok, result_info
from originlock.store import dns
from originlock.store.zones import get_zone

router = APIRouter()

#: Cloudflare's limit on a record's comment (500 characters on paid plans, 100 on Free); before it, a
#: 200 MB comment was stored (issue 10, item 8).
MAX_COMMENT = 500


class RecordBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    name: str
    content: str
    ttl: int = Field(default=1, ge=1, le=2**31 - 1)
    proxied: StrictBool = False
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class RecordPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str | None = None
    name: str | None = None
    content: str | None = None
    ttl: int | None = Field(default=None, ge=1, le=2**31 - 1)
    proxied: StrictBool | None = None
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


def record_json(row: Row[Any], zone_name: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "zone_id": row.zone_id,
        "zone_name": zone_name,
        "name": row.name,
        "type": row.type,
        "content": row.content,
        "proxiable": True,
        "proxied": row.proxied,
        "ttl": row.ttl,
        "comment": row.comment,
        "tags": [],
        "settings": {},
        "meta": {},
        "locked": False,
        "created_on": row.created_on,
        "modified_on": row.modified_on,
    }


def _to_input(body: RecordBody) -> dns.RecordInput:
    return dns.RecordInput(body.type.upper(), body.name, body.content, body.ttl, body.proxied, body.comment)


@router.post("/zones/{zone_id}/dns_records")
def create_record(body: RecordBody, store: StoreDep, access: DnsEdit) -> JSONResponse:
    with store.write() as conn:
        row = dns.create_record(conn, access.zone_id, _to_input(body))
        return ok(record_json(row, get_zone(conn, access.zone_id).name))


@router.get("/zones/{zone_id}/dns_records")
def list_records(
    store: StoreDep,
    access: DnsRead,
    page: RecordsPage,
    name: str | None = None,
    type: str | None = None,
    content: str | None = None,
    proxied: bool | None = None,
) -> JSONResponse:
    filters = {"name": name, "type": type.upper() if type else None, "content": content, "proxied": proxied}
    with store.read() as conn:
        rows, total = dns.list_records(conn, access.zone_id, filters=filters, offset=page.offset, limit=page.per_page)
        zone_name = get_zone(conn, access.zone_id).name
    items = [record_json(r, zone_name) for r in rows]
    return ok(items, result_info(page.page, page.per_page, len(items), total))


@router.get("/zones/{zone_id}/dns_records/{record_id}")
def get_record(record_id: str, store: StoreDep, access: DnsRead) -> JSONResponse:
    with store.read() as conn:
        row = dns.get_record(conn, access.zone_id, record_id)
        return ok(record_json(row, get_zone(conn, access.zone_id).name))


@router.put("/zones/{zone_id}/dns_records/{record_id}")
def replace_record(record_id: str, body: RecordBody, store: StoreDep, access: DnsEdit) -> JSONResponse:
    with store.write() as conn:
        row = dns.update_record(conn, access.zone_id, record_id, _to_input(body))
        return ok(record_json(row, get_zone(conn, access.zone_id).name))


@router.patch("/zones/{zone_id}/dns_records/{record_id}")
def edit_record(record_id: str, body: RecordPatch, store: StoreDep, access: DnsEdit) -> JSONResponse:
    with store.write() as conn:
        current = dns.get_record(conn, access.zone_id, record_id)
        merged = dns.RecordInput(
            (body.type or current.type).upper(),
            body.name if body.name is not None else current.name,
            body.content if body.content is not None else current.content,
            body.ttl if body.ttl is not None else current.ttl,
            body.proxied if body.proxied is not None else current.proxied,
            body.comment if "comment" in body.model_fields_set else current.comment,
        )
        row = dns.update_record(conn, access.zone_id, record_id, merged)
        return ok(record_json(row, get_zone(conn, access.zone_id).name))


@router.delete("/zones/{zone_id}/dns_records/{record_id}")
def delete_record(record_id: str, store: StoreDep, access: DnsEdit) -> JSONResponse:
    with store.write() as conn:
        dns.delete_record(conn, access.zone_id, record_id)
    return ok({"id": record_id})
