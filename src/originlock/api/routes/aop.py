"""Authenticated Origin Pulls: /zones/{zone_id}/origin_tls_client_auth[...] (spec §3, §4).

Route order matters: ``/settings`` and ``/hostnames...`` are declared before ``/{certificate_id}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import Row

from originlock.api.deps import SslEdit, SslRead, StoreDep, request_clock
from originlock.api.envelope import ok
from originlock.store import aop, identity, settings
from originlock.store.db import Store
from originlock.store.fips import zone_is_fips

router = APIRouter()
BASE = "/zones/{zone_id}/origin_tls_client_auth"


class CertUpload(BaseModel):
    # Extra fields such as the docs' "bundle_method" are accepted and ignored (spec §3.3).
    model_config = ConfigDict(extra="ignore")
    certificate: str = Field(min_length=1)
    private_key: str = Field(min_length=1, repr=False)


class ZoneAopSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")
    enabled: StrictBool


class AssociationItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    hostname: str = Field(min_length=1, max_length=255)
    cert_id: str | None = Field(default=None, max_length=36)
    # Required but nullable: null voids the association, false disables it (spec §4.3).
    enabled: StrictBool | None


class AssociationsPut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    config: list[AssociationItem]


def cert_json(row: Row[Any], now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "certificate": row.certificate,
        "expires_on": row.expires_on,
        "issuer": row.issuer,
        "signature": row.signature,
        "serial_number": row.serial_number,
        # A certificate ahead of its notBefore is pending_deployment, and not presented, until then.
        "status": aop.reported_status(row.status, row.certificate, now),
        "uploaded_on": row.uploaded_on,
    }


def association_json(row: Row[Any], now: datetime) -> dict[str, Any]:
    return {
        "hostname": row.hostname,
        "cert_id": row.cert_id,
        "enabled": row.enabled,
        "status": row.status,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "cert_status": aop.reported_status(row.cert_status, row.certificate, now),
        "certificate": row.certificate,
        "issuer": row.issuer,
        "signature": row.signature,
        "serial_number": row.serial_number,
        "expires_on": row.expires_on,
        "cert_uploaded_on": row.cert_uploaded_on,
        "cert_updated_at": row.cert_updated_at,
    }


def _upload(store: Store, zone_id: str, kind: Literal["zone", "hostname"], body: CertUpload, now: Any) -> JSONResponse:
    with store.write() as conn:
        fips = zone_is_fips(settings.zone_settings_map(conn, zone_id), store.fips)
        row = aop.upload_cert(conn, store.sealer, zone_id, kind, body.certificate, body.private_key, now, fips=fips)
        return ok(cert_json(row, now))


# --- zone-level enablement ---------------------------------------------------------------------


@router.get(BASE + "/settings")
def get_zone_settings(store: StoreDep, access: SslRead) -> JSONResponse:
    with store.read() as conn:
        return ok({"enabled": settings.get_aop_zone_enabled(conn, access.zone_id)})


@router.put(BASE + "/settings")
def put_zone_settings(body: ZoneAopSettings, store: StoreDep, access: SslEdit) -> JSONResponse:
    with store.write() as conn:
        return ok({"enabled": settings.set_aop_zone_enabled(conn, access.zone_id, body.enabled)})


@router.get(BASE + "/edge_identity")
def get_edge_identity(
    store: StoreDep, now: Annotated[Any, Depends(request_clock)], access: SslRead, hostname: str | None = None
) -> JSONResponse:
    """originlock extension for the origin kit: what the edge presents on TLS pulls, and the CAs to trust."""
    with store.read() as conn:
        found = identity.edge_identity(conn, access.zone_id, hostname, now, deployment_fips=store.fips)
    return ok(
        {
            "source": found.source,
            "certificate_id": found.certificate_id,
            "certificate": found.certificate,
            "ca_bundle": found.ca_bundle,
        }
    )


# --- per-hostname certificates and associations -----------------------------------------------


@router.post(BASE + "/hostnames/certificates")
def upload_hostname_cert(
    body: CertUpload, store: StoreDep, now: Annotated[Any, Depends(request_clock)], access: SslEdit
) -> JSONResponse:
    return _upload(store, access.zone_id, "hostname", body, now)


@router.get(BASE + "/hostnames/certificates")
def list_hostname_certs(store: StoreDep, access: SslRead, now: Annotated[Any, Depends(request_clock)]) -> JSONResponse:
    with store.read() as conn:
        return ok([cert_json(r, now) for r in aop.list_certs(conn, access.zone_id, "hostname")])


@router.get(BASE + "/hostnames/certificates/{certificate_id}")
def get_hostname_cert(
    certificate_id: str, store: StoreDep, access: SslRead, now: Annotated[Any, Depends(request_clock)]
) -> JSONResponse:
    with store.read() as conn:
        return ok(cert_json(aop.get_cert(conn, access.zone_id, "hostname", certificate_id), now))


@router.delete(BASE + "/hostnames/certificates/{certificate_id}")
def delete_hostname_cert(
    certificate_id: str, store: StoreDep, access: SslEdit, now: Annotated[Any, Depends(request_clock)]
) -> JSONResponse:
    with store.write() as conn:
        row = aop.delete_cert(conn, access.zone_id, "hostname", certificate_id)
    return ok({**cert_json(row, now), "status": "pending_deletion"})


@router.put(BASE + "/hostnames")
def put_associations(
    body: AssociationsPut, store: StoreDep, access: SslEdit, now: Annotated[Any, Depends(request_clock)]
) -> JSONResponse:
    items = [aop.AssociationInput(i.hostname, i.cert_id, i.enabled) for i in body.config]
    with store.write() as conn:
        return ok([association_json(r, now) for r in aop.put_associations(conn, access.zone_id, items)])


@router.get(BASE + "/hostnames/{hostname}")
def get_association(
    hostname: str, store: StoreDep, access: SslRead, now: Annotated[Any, Depends(request_clock)]
) -> JSONResponse:
    with store.read() as conn:
        return ok(association_json(aop.get_association(conn, access.zone_id, hostname), now))


# --- zone-level certificates ---------------------------------------------------------------------


@router.post(BASE)
def upload_zone_cert(
    body: CertUpload, store: StoreDep, now: Annotated[Any, Depends(request_clock)], access: SslEdit
) -> JSONResponse:
    return _upload(store, access.zone_id, "zone", body, now)


@router.get(BASE)
def list_zone_certs(store: StoreDep, access: SslRead, now: Annotated[Any, Depends(request_clock)]) -> JSONResponse:
    with store.read() as conn:
        items = [cert_json(r, now) for r in aop.list_certs(conn, access.zone_id, "zone")]
    return ok(
        items,
        {"page": 1, "per_page": max(len(items), 1), "count": len(items), "total_count": len(items), "total_pages": 1},
    )


@router.get(BASE + "/{certificate_id}")
def get_zone_cert(
    certificate_id: str, store: StoreDep, access: SslRead, now: Annotated[Any, Depends(request_clock)]
) -> JSONResponse:
    with store.read() as conn:
        return ok(cert_json(aop.get_cert(conn, access.zone_id, "zone", certificate_id), now))


@router.delete(BASE + "/{certificate_id}")
def delete_zone_cert(
    certificate_id: str, store: StoreDep, access: SslEdit, now: Annotated[Any, Depends(request_clock)]
) -> JSONResponse:
    with store.write() as conn:
        row = aop.delete_cert(conn, access.zone_id, "zone", certificate_id)
    return ok({**cert_json(row, now), "status": "pending_deletion"})
