"""Custom edge certificates: the visitor-facing certificate for the hostnames it covers.

Replaces the certificate the edge CA would issue for those hostnames. Unlike Cloudflare, any issuer is
accepted (a private PKI for internal sites is a legitimate use); the chain is sent as uploaded.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import Connection, Row, delete, func, insert, select, update

from originlock.store import schema
from originlock.store.db import now_iso, to_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.fips import check_upload, zone_is_fips
from originlock.store.sealing import KeySealer
from originlock.store.settings import zone_settings_map
from originlock.store.zones import get_zone
from originlock.tls.certs import CertificateError, describe, load_certificates, load_private_key, private_key_pem

__all__ = ["BUNDLE_METHODS", "create", "delete_cert", "get", "list_certs", "update_cert"]

BUNDLE_METHODS = ("ubiquitous", "optimal", "force")
_PUBLIC = [c for c in schema.custom_certificates.c if c.name not in ("key_sealed", "fingerprint")]


def _validate(certificate: str, private_key: str, now: datetime) -> dict[str, Any]:
    try:
        certs = load_certificates(certificate)
        key = load_private_key(private_key)
    except CertificateError as exc:
        raise Invalid(str(exc), 1212) from None
    leaf = certs[0]
    info = describe(leaf)
    if info.is_ca:
        raise Invalid("missing leaf certificate", 1212)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise Invalid("private key does not match certificate", 1212)
    if info.expires_on <= now.astimezone(UTC):
        raise Invalid(f"certificate expired on {to_iso(info.expires_on)}", 1212)
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
            raise Invalid("certificate's extended key usage does not allow TLS server authentication", 1212)
    except x509.ExtensionNotFound:
        pass
    try:
        hosts = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    except x509.ExtensionNotFound:
        hosts = []
    if not hosts:
        raise Invalid("certificate has no DNS names in its subjectAltName", 1212)
    chain = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)
    return {
        "certificate": chain,
        "key_pem": private_key_pem(key),
        "hosts": json.dumps([h.lower() for h in hosts]),
        "issuer": info.issuer,
        "signature": info.signature,
        "serial_number": info.serial_number,
        "fingerprint": info.fingerprint_sha256,
        "expires_on": to_iso(info.expires_on),
    }


def create(
    conn: Connection,
    sealer: KeySealer,
    zone_id: str,
    certificate: str,
    private_key: str,
    bundle_method: str,
    now: datetime,
    *,
    fips_deployment: bool = False,
) -> Row[Any]:
    get_zone(conn, zone_id)
    if bundle_method not in BUNDLE_METHODS:
        raise Invalid(f"bundle_method must be one of {', '.join(BUNDLE_METHODS)}", 1212)
    values = _validate(certificate, private_key, now)
    if zone_is_fips(zone_settings_map(conn, zone_id), fips_deployment):
        check_upload(values["certificate"])
    cert_id = str(uuid.uuid4())
    key_pem = values.pop("key_pem")
    top = conn.execute(
        select(func.max(schema.custom_certificates.c.priority)).where(schema.custom_certificates.c.zone_id == zone_id)
    ).scalar_one_or_none()
    stamp = now_iso()
    conn.execute(
        insert(schema.custom_certificates).values(
            id=cert_id,
            zone_id=zone_id,
            key_sealed=sealer.seal(key_pem, f"edge:{cert_id}"),
            bundle_method=bundle_method,
            # Newest upload wins ties by default: "the most recently ordered certificate takes precedence".
            priority=(top or 0) + 1,
            status="active",
            uploaded_on=stamp,
            modified_on=stamp,
            **values,
        )
    )
    return get(conn, zone_id, cert_id)


def get(conn: Connection, zone_id: str, cert_id: str) -> Row[Any]:
    get_zone(conn, zone_id)
    table = schema.custom_certificates
    row = conn.execute(select(*_PUBLIC).where(table.c.zone_id == zone_id, table.c.id == cert_id)).first()
    if row is None:
        raise NotFound(f"custom certificate {cert_id} not found", 1202)
    return row


def list_certs(conn: Connection, zone_id: str) -> list[Row[Any]]:
    get_zone(conn, zone_id)
    table = schema.custom_certificates
    query = select(*_PUBLIC).where(table.c.zone_id == zone_id).order_by(table.c.priority.desc())
    return list(conn.execute(query))


def update_cert(
    conn: Connection,
    sealer: KeySealer,
    zone_id: str,
    cert_id: str,
    changes: dict[str, Any],
    now: datetime,
    *,
    fips_deployment: bool = False,
) -> Row[Any]:
    get(conn, zone_id, cert_id)
    values: dict[str, Any] = {"modified_on": now_iso()}
    if "certificate" in changes or "private_key" in changes:
        if not (changes.get("certificate") and changes.get("private_key")):
            raise Invalid("certificate and private_key must be replaced together", 1212)
        values.update(_validate(changes["certificate"], changes["private_key"], now))
        if zone_is_fips(zone_settings_map(conn, zone_id), fips_deployment):
            check_upload(values["certificate"])
        values["key_sealed"] = sealer.seal(values.pop("key_pem"), f"edge:{cert_id}")
    if "bundle_method" in changes:
        if changes["bundle_method"] not in BUNDLE_METHODS:
            raise Invalid(f"bundle_method must be one of {', '.join(BUNDLE_METHODS)}", 1212)
        values["bundle_method"] = changes["bundle_method"]
    if "priority" in changes:
        values["priority"] = int(changes["priority"])
    conn.execute(update(schema.custom_certificates).where(schema.custom_certificates.c.id == cert_id).values(**values))
    return get(conn, zone_id, cert_id)


def delete_cert(conn: Connection, zone_id: str, cert_id: str) -> None:
    get(conn, zone_id, cert_id)
    conn.execute(delete(schema.custom_certificates).where(schema.custom_certificates.c.id == cert_id))
