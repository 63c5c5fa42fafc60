"""/certificates: Origin CA certificates (Cloudflare's Origin CA API, spec: issue 5 part 2)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row

from originlock.api.deps import Caller, StoreDep, ZonesPage, allow, check_zone_id, clock
from originlock.api.envelope import ok, result_info
from originlock.store import origin_ca

router = APIRouter()


class OriginCertCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    csr: str = Field(min_length=1)
    hostnames: list[str] = Field(min_length=1, max_length=100)
    request_type: str = "origin-rsa"
    requested_validity: int = Field(default=5475, ge=1, le=2**31 - 1)


def origin_cert_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "certificate": row.certificate,
        "csr": row.csr,
        "hostnames": json.loads(row.hostnames),
        "request_type": row.request_type,
        "requested_validity": row.requested_validity,
        "expires_on": row.expires_on,
        "revoked_at": row.revoked_at,
    }


@router.post("/certificates")
def create(
    body: OriginCertCreate, token: Caller, store: StoreDep, now: Annotated[datetime, Depends(clock)]
) -> JSONResponse:
    allow(token, "ssl:edit")
    with store.write() as conn:
        row = origin_ca.create_origin_cert(
            conn,
            store.sealer,
            csr_pem=body.csr,
            hostnames=body.hostnames,
            request_type=body.request_type,
            requested_validity=body.requested_validity,
            now=now,
        )
        return ok(origin_cert_json(row))


@router.get("/certificates")
def list_certs(request: Request, zone_id: str, token: Caller, store: StoreDep, page: ZonesPage) -> JSONResponse:
    check_zone_id(request, zone_id)
    allow(token, "ssl:read", zone_id)
    with store.read() as conn:
        items = [origin_cert_json(r) for r in origin_ca.list_origin_certs(conn, zone_id)]
    # The SDK pages until it gets an empty page: honour page/per_page.
    chunk = items[page.offset : page.offset + page.per_page]
    return ok(chunk, result_info(page.page, page.per_page, len(chunk), len(items)))


@router.get("/certificates/{certificate_id}")
def get(certificate_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    allow(token, "ssl:read")
    with store.read() as conn:
        return ok(origin_cert_json(origin_ca.get_origin_cert(conn, certificate_id)))


@router.delete("/certificates/{certificate_id}")
def revoke(certificate_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    allow(token, "ssl:edit")
    with store.write() as conn:
        row = origin_ca.revoke(conn, certificate_id)
    return ok({"id": row.id, "revoked_at": row.revoked_at})
