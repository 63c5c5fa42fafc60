"""/certificates: Origin CA certificates (Cloudflare's Origin CA API, spec: issue 5 part 2).

No zone is in these paths, so every route resolves the zones a certificate's names belong to and checks
the token against each of them (issue 10 item 2: a zone-A token revoked zone B's certificate).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Row

from originlock.api.authz import require_zones
from originlock.api.deps import Caller, StoreDep, ZonesPage, allow, check_zone_id, request_clock
from originlock.api.envelope import ok, result_info
from originlock.store import origin_ca
from originlock.store.tokens import Token

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


def _authorize(conn: Connection, token: Token, permission: str, hostnames: list[str]) -> None:
    """A certificate belongs to the zones of its names (a name in no zone: to the account), and needs
    ``permission`` on every one of them: reading or revoking a certificate that also covers ``www.b.test``
    is acting on zone b.test."""
    require_zones(token, permission, sorted(origin_ca.owning_zones(conn, hostnames), key=str))


@router.post("/certificates")
def create(
    body: OriginCertCreate, token: Caller, store: StoreDep, now: Annotated[datetime, Depends(request_clock)]
) -> JSONResponse:
    with store.write() as conn:
        _authorize(conn, token, "ssl:edit", origin_ca.normalized_hostnames(body.hostnames))
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
    with store.read() as conn:
        row = origin_ca.get_origin_cert(conn, certificate_id)
        _authorize(conn, token, "ssl:read", json.loads(row.hostnames))
        return ok(origin_cert_json(row))


@router.delete("/certificates/{certificate_id}")
def revoke(certificate_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    with store.write() as conn:
        _authorize(conn, token, "ssl:edit", json.loads(origin_ca.get_origin_cert(conn, certificate_id).hostnames))
        row = origin_ca.revoke(conn, certificate_id)
    return ok({"id": row.id, "revoked_at": row.revoked_at})
