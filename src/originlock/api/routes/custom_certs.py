"""/zones/{zone_id}/custom_certificates: uploaded visitor-facing (edge) certificates."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row

from originlock.api.deps import SslEdit, SslRead, StoreDep, ZonesPage, request_clock
from originlock.api.envelope import ok, result_info
from originlock.store import custom_certs

router = APIRouter()
BASE = "/zones/{zone_id}/custom_certificates"


class Upload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    certificate: str = Field(min_length=1)
    private_key: str = Field(min_length=1, repr=False)
    bundle_method: str = "ubiquitous"


class Patch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    certificate: str | None = None
    private_key: str | None = Field(default=None, repr=False)
    bundle_method: str | None = None
    priority: int | None = Field(default=None, ge=0, le=2**31 - 1)  # an INTEGER column on both backends


class PriorityItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(max_length=64)
    priority: int = Field(ge=0, le=2**31 - 1)


class Prioritize(BaseModel):
    model_config = ConfigDict(extra="ignore")
    certificates: list[PriorityItem] = Field(min_length=1, max_length=1000)


def cert_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "zone_id": row.zone_id,
        "hosts": json.loads(row.hosts),
        "issuer": row.issuer,
        "signature": row.signature,
        "serial_number": row.serial_number,
        "status": row.status,
        "bundle_method": row.bundle_method,
        "priority": row.priority,
        "type": "sni_custom",
        "uploaded_on": row.uploaded_on,
        "modified_on": row.modified_on,
        "expires_on": row.expires_on,
        "geo_restrictions": None,
        "keyless_server": None,
        "policy": None,
    }


@router.post(BASE)
def upload(
    body: Upload, store: StoreDep, now: Annotated[datetime, Depends(request_clock)], access: SslEdit
) -> JSONResponse:
    with store.write() as conn:
        row = custom_certs.create(
            conn,
            store.sealer,
            access.zone_id,
            body.certificate,
            body.private_key,
            body.bundle_method,
            now,
            fips_deployment=store.fips,
        )
        return ok(cert_json(row))


@router.get(BASE)
def list_certs(store: StoreDep, access: SslRead, page: ZonesPage) -> JSONResponse:
    with store.read() as conn:
        items = [cert_json(r) for r in custom_certs.list_certs(conn, access.zone_id)]
    chunk = items[page.offset : page.offset + page.per_page]
    return ok(chunk, result_info(page.page, page.per_page, len(chunk), len(items)))


@router.put(BASE + "/prioritize")
def prioritize(
    body: Prioritize, store: StoreDep, now: Annotated[datetime, Depends(request_clock)], access: SslEdit
) -> JSONResponse:
    """Set several certificates' priorities at once (all or none); answers the zone's certificates in order."""
    with store.write() as conn:
        for item in body.certificates:
            custom_certs.update_cert(conn, store.sealer, access.zone_id, item.id, {"priority": item.priority}, now)
        items = [cert_json(r) for r in custom_certs.list_certs(conn, access.zone_id)]
    return ok(items, result_info(1, max(len(items), 1), len(items), len(items)))


@router.get(BASE + "/{certificate_id}")
def get(certificate_id: str, store: StoreDep, access: SslRead) -> JSONResponse:
    with store.read() as conn:
        return ok(cert_json(custom_certs.get(conn, access.zone_id, certificate_id)))


@router.patch(BASE + "/{certificate_id}")
def edit(
    certificate_id: str, body: Patch, store: StoreDep, now: Annotated[datetime, Depends(request_clock)], access: SslEdit
) -> JSONResponse:
    changes = {k: getattr(body, k) for k in body.model_fields_set if getattr(body, k) is not None}
    with store.write() as conn:
        return ok(
            cert_json(
                custom_certs.update_cert(
                    conn, store.sealer, access.zone_id, certificate_id, changes, now, fips_deployment=store.fips
                )
            )
        )


@router.delete(BASE + "/{certificate_id}")
def remove(certificate_id: str, store: StoreDep, access: SslEdit) -> JSONResponse:
    with store.write() as conn:
        custom_certs.delete_cert(conn, access.zone_id, certificate_id)
    return ok({"id": certificate_id})
