"""/zones/{zone_id}/dns_records: every record type, with comment, tags, data, priority and 5.x list filters."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import Row

from originlock.api.deps import DnsEdit, DnsRead, RecordsPage, StoreDep
from originlock.api.envelope import ok, result_info
from originlock.store import dns
from originlock.store.dns_query import RecordQuery
from originlock.store.dns_types import PROXIABLE
from originlock.store.zones import get_zone

router = APIRouter()
BASE = "/zones/{zone_id}/dns_records"

#: Cloudflare's limit on a record's comment (500 characters on paid plans, 100 on Free); before it, a
#: 200 MB comment was stored (issue 10, item 8).
MAX_COMMENT = 500


class RecordBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(max_length=16)
    name: str = Field(max_length=255)
    content: str | None = Field(default=None, max_length=8192)
    ttl: int = Field(default=1, ge=1, le=2**31 - 1)
    proxied: StrictBool = False
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)
    tags: list[str] = Field(default_factory=list)
    data: dict[str, Any] | None = None
    priority: int | None = Field(default=None, ge=0, le=65535)
    settings: dict[str, Any] = Field(default_factory=dict)

    def to_input(self) -> dns.RecordInput:
        return dns.RecordInput(
            self.type.upper(),
            self.name,
            self.content,
            self.ttl,
            self.proxied,
            self.comment,
            tuple(self.tags),
            self.data,
            self.priority,
            self.settings,
        )


class RecordPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str | None = Field(default=None, max_length=16)
    name: str | None = Field(default=None, max_length=255)
    content: str | None = Field(default=None, max_length=8192)
    ttl: int | None = Field(default=None, ge=1, le=2**31 - 1)
    proxied: StrictBool | None = None
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)
    tags: list[str] | None = None
    data: dict[str, Any] | None = None
    priority: int | None = Field(default=None, ge=0, le=65535)
    settings: dict[str, Any] | None = None

    def merge(self, current: dns.RecordInput) -> dns.RecordInput:
        fields = set(RecordPatch.model_fields) & self.model_fields_set  # not a batch patch's "id"
        given = {k: getattr(self, k) for k in fields if getattr(self, k) is not None}
        if "comment" in self.model_fields_set:
            given["comment"] = self.comment  # null clears the comment
        if "content" in given and "data" not in given:
            given["data"] = None  # new presentation content: its data is derived again
        if "type" in given:
            given["type"] = given["type"].upper()
        if "tags" in given:
            given["tags"] = tuple(given["tags"])
        return dns.RecordInput(**{**current.__dict__, **given})


def record_json(row: Row[Any], zone_name: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "zone_id": row.zone_id,
        "zone_name": zone_name,
        "name": row.name,
        "type": row.type,
        "content": row.content,
        "proxiable": row.type in PROXIABLE,
        "proxied": bool(row.proxied),
        "ttl": row.ttl,
        "comment": row.comment,
        "tags": json.loads(row.tags or "[]"),
        "settings": json.loads(row.settings or "{}"),
        "meta": {},
        "locked": False,
        "created_on": row.created_on,
        "modified_on": row.modified_on,
    }
    if row.priority is not None:
        body["priority"] = row.priority
    if row.data:
        body["data"] = json.loads(row.data)
    return body


Op = Annotated[str | None, Query(max_length=1024)]


def record_query(
    type: Annotated[str | None, Query(max_length=16)] = None,
    proxied: bool | None = None,
    name: Op = None,
    name_exact: Annotated[str | None, Query(alias="name.exact", max_length=1024)] = None,
    name_contains: Annotated[str | None, Query(alias="name.contains", max_length=1024)] = None,
    name_startswith: Annotated[str | None, Query(alias="name.startswith", max_length=1024)] = None,
    name_endswith: Annotated[str | None, Query(alias="name.endswith", max_length=1024)] = None,
    content: Op = None,
    content_exact: Annotated[str | None, Query(alias="content.exact", max_length=1024)] = None,
    content_contains: Annotated[str | None, Query(alias="content.contains", max_length=1024)] = None,
    content_startswith: Annotated[str | None, Query(alias="content.startswith", max_length=1024)] = None,
    content_endswith: Annotated[str | None, Query(alias="content.endswith", max_length=1024)] = None,
    comment: Op = None,
    comment_exact: Annotated[str | None, Query(alias="comment.exact", max_length=1024)] = None,
    comment_contains: Annotated[str | None, Query(alias="comment.contains", max_length=1024)] = None,
    comment_startswith: Annotated[str | None, Query(alias="comment.startswith", max_length=1024)] = None,
    comment_endswith: Annotated[str | None, Query(alias="comment.endswith", max_length=1024)] = None,
    comment_present: Annotated[str | None, Query(alias="comment.present", max_length=1024)] = None,
    comment_absent: Annotated[str | None, Query(alias="comment.absent", max_length=1024)] = None,
    tag: Op = None,
    tag_exact: Annotated[str | None, Query(alias="tag.exact", max_length=1024)] = None,
    tag_contains: Annotated[str | None, Query(alias="tag.contains", max_length=1024)] = None,
    tag_startswith: Annotated[str | None, Query(alias="tag.startswith", max_length=1024)] = None,
    tag_endswith: Annotated[str | None, Query(alias="tag.endswith", max_length=1024)] = None,
    tag_present: Annotated[str | None, Query(alias="tag.present", max_length=1024)] = None,
    tag_absent: Annotated[str | None, Query(alias="tag.absent", max_length=1024)] = None,
    tag_match: Literal["any", "all"] = "all",
    match: Literal["any", "all"] = "all",
    search: Op = None,
    order: Literal["type", "name", "content", "ttl", "proxied"] | None = None,
    direction: Literal["asc", "desc"] = "asc",
) -> RecordQuery:
    """One parameter per documented filter, so the OpenAPI document lists them all.

    The 4.x spelling (``name=``, ``content=``, ``comment=``, ``tag=``) means ``.exact``, as before 5.x."""

    def ops(legacy: str | None, **given: str | None) -> dict[str, str]:
        out = {op: value for op, value in given.items() if value is not None}
        if legacy is not None:
            out.setdefault("exact", legacy)
        return out

    return RecordQuery(
        type=type.upper() if type else None,
        proxied=proxied,
        name=ops(name, exact=name_exact, contains=name_contains, startswith=name_startswith, endswith=name_endswith),
        content=ops(
            content,
            exact=content_exact,
            contains=content_contains,
            startswith=content_startswith,
            endswith=content_endswith,
        ),
        comment=ops(
            comment,
            exact=comment_exact,
            contains=comment_contains,
            startswith=comment_startswith,
            endswith=comment_endswith,
            present=comment_present,
            absent=comment_absent,
        ),
        tag=ops(
            tag,
            exact=tag_exact,
            contains=tag_contains,
            startswith=tag_startswith,
            endswith=tag_endswith,
            present=tag_present,
            absent=tag_absent,
        ),
        tag_match=tag_match,
        match=match,
        search=search,
        order=order,
        direction=direction,
    )


@router.post(BASE)
def create_record(body: RecordBody, store: StoreDep, access: DnsEdit) -> JSONResponse:
    with store.write() as conn:
        row = dns.create_record(conn, access.zone_id, body.to_input())
        return ok(record_json(row, get_zone(conn, access.zone_id).name))


@router.get(BASE)
def list_records(
    store: StoreDep, access: DnsRead, page: RecordsPage, query: Annotated[RecordQuery, Depends(record_query)]
) -> JSONResponse:
    with store.read() as conn:
        rows, total = dns.list_records(conn, access.zone_id, query=query, offset=page.offset, limit=page.per_page)
        zone_name = get_zone(conn, access.zone_id).name
    items = [record_json(r, zone_name) for r in rows]
    return ok(items, result_info(page.page, page.per_page, len(items), total))


@router.get(BASE + "/{record_id}")
def get_record(record_id: str, store: StoreDep, access: DnsRead) -> JSONResponse:
    with store.read() as conn:
        row = dns.get_record(conn, access.zone_id, record_id)
        return ok(record_json(row, get_zone(conn, access.zone_id).name))


@router.put(BASE + "/{record_id}")
def replace_record(record_id: str, body: RecordBody, store: StoreDep, access: DnsEdit) -> JSONResponse:
    with store.write() as conn:
        row = dns.update_record(conn, access.zone_id, record_id, body.to_input())
        return ok(record_json(row, get_zone(conn, access.zone_id).name))


@router.patch(BASE + "/{record_id}")
def edit_record(record_id: str, body: RecordPatch, store: StoreDep, access: DnsEdit) -> JSONResponse:
    with store.write() as conn:
        current = dns.as_input(dns.get_record(conn, access.zone_id, record_id))
        row = dns.update_record(conn, access.zone_id, record_id, body.merge(current))
        return ok(record_json(row, get_zone(conn, access.zone_id).name))


@router.delete(BASE + "/{record_id}")
def delete_record(record_id: str, store: StoreDep, access: DnsEdit) -> JSONResponse:
    with store.write() as conn:
        dns.delete_record(conn, access.zone_id, record_id)
    return ok({"id": record_id})
