"""/zones/{zone_id}/dns_records/{batch,export,import}: a zone's record set as a whole.

``batch`` runs deletes, patches, puts and posts in that order in one store transaction: one failing operation
rolls back all of them, and the error points at it (``/posts/2``). ``import`` takes the multipart form the SDK
and ``curl --form file=@zone.txt`` send; it is parsed with the standard library's MIME parser.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from originlock.api.deps import DnsEdit, DnsRead, StoreDep
from originlock.api.envelope import ok
from originlock.api.routes.dns import BASE, RecordBody, RecordPatch, record_json
from originlock.store import dns
from originlock.store.dns_bind import export_zone, parse_zone
from originlock.store.dns_types import PROXIABLE, normalise, record_name
from originlock.store.errors import Invalid, StoreError
from originlock.store.zones import get_zone

router = APIRouter()
#: Operations per batch: Cloudflare's limit for most plans.
BATCH_MAX = 3500
#: Zone file size accepted by import (Cloudflare's own limit is about this).
IMPORT_MAX = 4 * 1024 * 1024


class RecordRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(max_length=64)


class PatchOp(RecordPatch):
    id: str = Field(max_length=64)


class PutOp(RecordBody):
    id: str = Field(max_length=64)


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    deletes: list[RecordRef] = Field(default_factory=list)
    patches: list[PatchOp] = Field(default_factory=list)
    puts: list[PutOp] = Field(default_factory=list)
    posts: list[RecordBody] = Field(default_factory=list)


class _At(StoreError):
    """A batch operation's error, pointing at the operation (the API's error handler reads ``pointer``)."""

    def __init__(self, exc: StoreError, pointer: str) -> None:
        super().__init__(f"{pointer.strip('/')}: {exc.message}", exc.code)
        self.http_status = exc.http_status
        self.pointer = pointer


@router.post(BASE + "/batch")
def batch(body: BatchBody, store: StoreDep, access: DnsEdit) -> JSONResponse:
    total = len(body.deletes) + len(body.patches) + len(body.puts) + len(body.posts)
    if total > BATCH_MAX:
        raise Invalid(f"a batch holds at most {BATCH_MAX} operations", 1004)
    result: dict[str, list[dict[str, Any]]] = {"deletes": [], "patches": [], "puts": [], "posts": []}
    zone_id = access.zone_id
    with store.write() as conn:
        zone_name = get_zone(conn, zone_id).name
        step = ""
        try:
            for i, ref in enumerate(body.deletes):
                step = f"/deletes/{i}"
                result["deletes"].append(record_json(dns.get_record(conn, zone_id, ref.id), zone_name))
                dns.delete_record(conn, zone_id, ref.id)
            for i, patch in enumerate(body.patches):
                step = f"/patches/{i}"
                current = dns.as_input(dns.get_record(conn, zone_id, patch.id))
                row = dns.update_record(conn, zone_id, patch.id, patch.merge(current))
                result["patches"].append(record_json(row, zone_name))
            for i, put in enumerate(body.puts):
                step = f"/puts/{i}"
                row = dns.update_record(conn, zone_id, put.id, put.to_input())
                result["puts"].append(record_json(row, zone_name))
            for i, post in enumerate(body.posts):
                step = f"/posts/{i}"
                result["posts"].append(record_json(dns.create_record(conn, zone_id, post.to_input()), zone_name))
        except StoreError as exc:
            raise _At(exc, step) from None
    return ok(result)


@router.get(BASE + "/export")
def export(store: StoreDep, access: DnsRead) -> PlainTextResponse:
    with store.read() as conn:
        zone_name = get_zone(conn, access.zone_id).name
        text = export_zone(zone_name, dns.all_records(conn, access.zone_id))
    return PlainTextResponse(text)


def _form(request: Request, raw: bytes) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise Invalid("import takes multipart/form-data with a file field (curl --form file=@zone.txt)", 1004)
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", errors="replace")
    return fields


@router.post(BASE + "/import")
async def import_records(request: Request, store: StoreDep, access: DnsEdit) -> JSONResponse:
    raw = await request.body()
    if len(raw) > IMPORT_MAX:
        raise Invalid(f"the zone file is larger than {IMPORT_MAX} bytes", 1004)
    fields = _form(request, raw)
    if "file" not in fields:
        raise Invalid("the form has no file field", 1004)
    proxied_default = fields.get("proxied", "false").strip().lower() == "true"
    added = 0
    with store.write() as conn:
        zone_name = get_zone(conn, access.zone_id).name
        parsed = parse_zone(fields["file"], zone_name)
        existing = {(r.name, r.type, r.content) for r in dns.all_records(conn, access.zone_id)}
        for record in parsed:
            proxied = record.proxied if record.proxied is not None else proxied_default
            item = dns.RecordInput(
                type=record.type,
                name=record.name,
                content=record.content,
                ttl=record.ttl if record.ttl >= dns.TTL_MIN else dns.TTL_AUTO,
                proxied=proxied and record.type in PROXIABLE,
                priority=record.priority,
            )
            try:
                row = dns.create_record(conn, access.zone_id, item) if _new(item, zone_name, existing) else None
            except StoreError as exc:
                raise Invalid(f"line {record.line}: {exc.message}", exc.code) from None
            if row is not None:
                existing.add((row.name, row.type, row.content))
                added += 1
    return ok({"recs_added": added, "total_records_parsed": len(parsed)})


def _new(item: dns.RecordInput, zone_name: str, existing: set[tuple[str, str, str]]) -> bool:
    """Re-importing an exported file adds nothing: records already there are skipped, not refused."""
    try:
        content = normalise(item.type, item.content, None, item.priority).content
        return (record_name(item.name, zone_name), item.type, content) not in existing
    except StoreError:
        return True  # let create_record report it with its own code
