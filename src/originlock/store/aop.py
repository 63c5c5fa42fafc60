"""Authenticated Origin Pulls: zone and hostname client certificates, and hostname associations.

Uploads are validated (tls/certs.py), keys sealed before they touch the database, and certificates
become ``active`` in the same transaction: the edge picks them up with the next snapshot (< 1 s).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from cryptography import x509
from sqlalchemy import Connection, Row, delete, func, insert, select, update

from originlock.snapshot.aop import effective_status
from originlock.store import schema
from originlock.store.db import now_iso, to_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.fips import check_upload
from originlock.store.sealing import KeySealer
from originlock.store.zones import get_zone, normalize_hostname
from originlock.tls.certs import CertificateError, validate_client_upload

__all__ = [
    "MAX_ASSOCIATIONS_PER_CERT",
    "MAX_HOSTNAME_CERTS",
    "AssociationInput",
    "delete_cert",
    "get_association",
    "get_cert",
    "list_certs",
    "put_associations",
    "reported_status",
    "upload_cert",
]

CertKind = Literal["zone", "hostname"]

#: "10 hostname certificates per zone are allowed." (spec §4.1)
MAX_HOSTNAME_CERTS = 10
#: "100 maximum associations on a single certificate are allowed." (spec §4.1)
MAX_ASSOCIATIONS_PER_CERT = 100

_PUBLIC_CERT_COLUMNS = [
    c
    for c in schema.aop_certs.c
    if c.name not in ("key_sealed", "chain_pem", "fingerprint", "kind", "zone_id", "not_before")
]


@dataclass(frozen=True)
class AssociationInput:
    hostname: str
    cert_id: str | None
    #: True, False, or None (void the association).
    enabled: bool | None


def upload_cert(
    conn: Connection,
    sealer: KeySealer,
    zone_id: str,
    kind: CertKind,
    certificate: str,
    private_key: str,
    now: datetime,
    *,
    fips: bool = False,
) -> Row[Any]:
    get_zone(conn, zone_id)
    try:
        upload = validate_client_upload(certificate, private_key, now)
    except CertificateError as exc:
        raise Invalid(str(exc), 1402 if kind == "zone" else 1412) from None
    if fips:
        check_upload(upload.chain_pem)
    if kind == "hostname":
        count = conn.execute(
            select(func.count()).where(
                schema.aop_certs.c.zone_id == zone_id,
                schema.aop_certs.c.kind == "hostname",
                schema.aop_certs.c.status == "active",
            )
        ).scalar_one()
        if count >= MAX_HOSTNAME_CERTS:
            raise Invalid(
                f"this zone already has {MAX_HOSTNAME_CERTS} hostname certificates, the maximum allowed", 1413
            )
    cert_id = str(uuid.uuid4())
    stamp = now_iso()
    conn.execute(
        insert(schema.aop_certs).values(
            id=cert_id,
            zone_id=zone_id,
            kind=kind,
            certificate=upload.leaf_pem,
            chain_pem=upload.chain_pem,
            key_sealed=sealer.seal(upload.key_pem, cert_id),
            issuer=upload.info.issuer,
            signature=upload.info.signature,
            serial_number=upload.info.serial_number,
            fingerprint=upload.info.fingerprint_sha256,
            expires_on=to_iso(upload.info.expires_on),
            not_before=to_iso(upload.info.not_before),  # the snapshot compile's, which then parses no PEM
            status="active",
            uploaded_on=stamp,
            updated_at=stamp,
        )
    )
    return get_cert(conn, zone_id, kind, cert_id)


def get_cert(conn: Connection, zone_id: str, kind: CertKind, cert_id: str) -> Row[Any]:
    get_zone(conn, zone_id)
    row = conn.execute(
        select(*_PUBLIC_CERT_COLUMNS).where(
            schema.aop_certs.c.zone_id == zone_id, schema.aop_certs.c.kind == kind, schema.aop_certs.c.id == cert_id
        )
    ).first()
    if row is None:
        raise NotFound(f"{kind} certificate {cert_id} not found", 1404)
    return row


def list_certs(conn: Connection, zone_id: str, kind: CertKind) -> list[Row[Any]]:
    get_zone(conn, zone_id)
    return list(
        conn.execute(
            select(*_PUBLIC_CERT_COLUMNS)
            .where(schema.aop_certs.c.zone_id == zone_id, schema.aop_certs.c.kind == kind)
            .order_by(schema.aop_certs.c.uploaded_on)
        )
    )


def delete_cert(conn: Connection, zone_id: str, kind: CertKind, cert_id: str) -> Row[Any]:
    row = get_cert(conn, zone_id, kind, cert_id)
    if kind == "hostname":
        live = conn.execute(
            select(schema.hostname_associations.c.hostname).where(
                schema.hostname_associations.c.cert_id == cert_id,
                schema.hostname_associations.c.enabled.is_not(None),
            )
        ).first()
        if live is not None:
            raise Invalid(
                f"certificate {cert_id} is still associated with {live.hostname}; invalidate the association first "
                "by sending PUT .../origin_tls_client_auth/hostnames with enabled set to null",
                1414,
            )
        conn.execute(delete(schema.hostname_associations).where(schema.hostname_associations.c.cert_id == cert_id))
    conn.execute(delete(schema.aop_certs).where(schema.aop_certs.c.id == cert_id))
    return row


def _association_row(conn: Connection, zone_id: str, hostname: str) -> Row[Any] | None:
    a, c = schema.hostname_associations, schema.aop_certs
    query = (
        select(
            a.c.hostname,
            a.c.cert_id,
            a.c.enabled,
            a.c.status,
            a.c.created_at,
            a.c.updated_at,
            c.c.status.label("cert_status"),
            c.c.certificate,
            c.c.issuer,
            c.c.signature,
            c.c.serial_number,
            c.c.expires_on,
            c.c.uploaded_on.label("cert_uploaded_on"),
            c.c.updated_at.label("cert_updated_at"),
        )
        .select_from(a.join(c, a.c.cert_id == c.c.id))
        .where(a.c.zone_id == zone_id, a.c.hostname == hostname)
    )
    return cast("Row[Any] | None", conn.execute(query).first())


def get_association(conn: Connection, zone_id: str, hostname: str) -> Row[Any]:
    get_zone(conn, zone_id)
    row = _association_row(conn, zone_id, hostname.strip().rstrip(".").lower())
    if row is None:
        raise NotFound(f"hostname {hostname} has no per-hostname authenticated origin pulls association", 1417)
    return row


def _check_hostname_cert(conn: Connection, zone_id: str, cert_id: str | None) -> str:
    if cert_id is None:
        raise Invalid("cert_id is required", 1415)
    row = conn.execute(
        select(schema.aop_certs.c.id).where(
            schema.aop_certs.c.id == cert_id,
            schema.aop_certs.c.zone_id == zone_id,
            schema.aop_certs.c.kind == "hostname",
            schema.aop_certs.c.status == "active",
        )
    ).first()
    if row is None:
        raise Invalid("Certificate ID in request is either invalid or the certificate has been deleted", 1415)
    return cert_id


def put_associations(conn: Connection, zone_id: str, items: list[AssociationInput]) -> list[Row[Any]]:
    """Bulk upsert keyed by hostname (not a full replace); all-or-nothing."""
    zone = get_zone(conn, zone_id)
    table = schema.hostname_associations
    hostnames: list[str] = []
    for item in items:
        hostname = normalize_hostname(item.hostname, what="hostname", wildcard=True)
        if hostname != zone.name and not hostname.endswith("." + zone.name):
            raise Invalid(f"hostname {hostname} is not in zone {zone.name}", 1416)
        existing = conn.execute(select(table).where(table.c.zone_id == zone_id, table.c.hostname == hostname)).first()
        if item.cert_id is None and item.enabled is None and existing is not None:
            cert_id = existing.cert_id  # voiding needs no cert_id
        else:
            cert_id = _check_hostname_cert(conn, zone_id, item.cert_id)
        stamp = now_iso()
        if existing is None:
            conn.execute(
                insert(table).values(
                    zone_id=zone_id,
                    hostname=hostname,
                    cert_id=cert_id,
                    enabled=item.enabled,
                    status="active",
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        else:
            conn.execute(
                update(table)
                .where(table.c.zone_id == zone_id, table.c.hostname == hostname)
                .values(cert_id=cert_id, enabled=item.enabled, updated_at=stamp)
            )
        in_use = conn.execute(
            select(func.count()).where(table.c.cert_id == cert_id, table.c.enabled.is_not(None))
        ).scalar_one()
        if in_use > MAX_ASSOCIATIONS_PER_CERT:
            raise Invalid(
                f"certificate {cert_id} would have more than {MAX_ASSOCIATIONS_PER_CERT} associations, the maximum",
                1418,
            )
        hostnames.append(hostname)
    rows = [_association_row(conn, zone_id, h) for h in hostnames]
    return [r for r in rows if r is not None]


def reported_status(status: str, certificate_pem: str | None, now: datetime) -> str:
    """``status`` as the API reports it: ``pending_deployment`` while the leaf's notBefore is ahead."""
    if status != "active" or not certificate_pem:
        return status
    not_before = x509.load_pem_x509_certificate(certificate_pem.encode()).not_valid_before_utc
    return effective_status(status, not_before, now)


def load_key(conn: Connection, sealer: KeySealer, cert_id: str) -> bytes:
    """The cleartext key of one certificate, for the snapshot only (never for an API response)."""
    sealed = conn.execute(select(schema.aop_certs.c.key_sealed).where(schema.aop_certs.c.id == cert_id)).scalar_one()
    return sealer.open(bytes(sealed), cert_id)
