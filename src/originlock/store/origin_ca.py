"""Origin CA: origin server certificates issued from a CSR by the deployment's origin CA.

The edge trusts this CA in Full (strict), as Cloudflare's edge trusts the Cloudflare Origin CA. The
private key stays with whoever made the CSR: this API never sees one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import Connection, Row, insert, select, update

from originlock.store import schema
from originlock.store.db import now_iso, to_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.pki import load_pki
from originlock.store.sealing import KeySealer
from originlock.store.zones import get_zone, normalize_hostname
from originlock.tls.certs import ALLOWED_CURVES, MIN_RSA_BITS
from originlock.tls.issue import certify

__all__ = [
    "REQUEST_TYPES",
    "VALIDITY_DAYS",
    "create_origin_cert",
    "get_origin_cert",
    "list_origin_certs",
    "normalized_hostnames",
    "owning_zones",
    "revoke",
    "revoked_fingerprints",
]

#: Cloudflare's accepted ``requested_validity`` values, in days; 5475 (15 years) is its default.
VALIDITY_DAYS = (7, 30, 90, 365, 730, 1095, 5475)
REQUEST_TYPES = ("origin-rsa", "origin-ecc")


def _load_csr(csr_pem: str, request_type: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem.replace("\\n", "\n").strip().encode() + b"\n")
    except ValueError:
        raise Invalid("csr is not a PEM certificate signing request", 1010) from None
    if not csr.is_signature_valid:
        raise Invalid("csr signature is invalid", 1010)
    key = csr.public_key()
    if request_type == "origin-rsa":
        if not isinstance(key, rsa.RSAPublicKey):
            raise Invalid("request_type origin-rsa needs a CSR with an RSA key", 1010)
        if key.key_size < MIN_RSA_BITS:
            raise Invalid(f"the CSR's RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are required", 1010)
    elif not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in ALLOWED_CURVES:
        raise Invalid("request_type origin-ecc needs a CSR with a P-256 or P-384 key", 1010)
    return csr


def create_origin_cert(
    conn: Connection,
    sealer: KeySealer,
    *,
    csr_pem: str,
    hostnames: list[str],
    request_type: str,
    requested_validity: int,
    now: datetime,
) -> Row[Any]:
    if request_type not in REQUEST_TYPES:
        raise Invalid(f"request_type must be one of {', '.join(REQUEST_TYPES)}", 1010)
    if requested_validity not in VALIDITY_DAYS:
        raise Invalid(f"requested_validity must be one of {', '.join(map(str, VALIDITY_DAYS))} (days)", 1010)
    if not hostnames:
        raise Invalid("hostnames must list at least one hostname", 1010)
    names = normalized_hostnames(hostnames)
    csr = _load_csr(csr_pem, request_type)
    cas = load_pki(conn, sealer)
    # The CSR's key is certified; its subject is replaced by the first hostname, as Cloudflare does.
    cert = certify(
        cas.origin_ca,
        names[0],
        csr.public_key(),
        now=now,
        days=requested_validity,
        client=False,
        server=True,
        sans=names,
        organization="originlock origin certificate",
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_id = str(cert.serial_number)
    conn.execute(
        insert(schema.origin_certs).values(
            id=cert_id,
            certificate=pem,
            csr=csr.public_bytes(serialization.Encoding.PEM).decode(),
            hostnames=json.dumps(names),
            request_type=request_type,
            requested_validity=requested_validity,
            expires_on=to_iso(cert.not_valid_after_utc),
            created_on=now_iso(),
            revoked_at=None,
        )
    )
    return get_origin_cert(conn, cert_id)


def get_origin_cert(conn: Connection, cert_id: str) -> Row[Any]:
    row = conn.execute(select(schema.origin_certs).where(schema.origin_certs.c.id == cert_id)).first()
    if row is None:
        raise NotFound(f"origin certificate {cert_id} not found", 1004)
    return row


def owning_zones(conn: Connection, hostnames: list[str]) -> set[str | None]:
    """The zones a certificate for ``hostnames`` belongs to: per name, the zone with the longest matching
    name (``www.b.test`` and ``*.b.test`` belong to ``b.test``), or None for a name in no zone."""
    zone_names = {r.name: r.id for r in conn.execute(select(schema.zones.c.id, schema.zones.c.name))}
    owners: set[str | None] = set()
    for hostname in hostnames:
        labels = hostname.removeprefix("*.").split(".")
        suffixes = (".".join(labels[i:]) for i in range(len(labels)))
        owners.add(next((zone_names[s] for s in suffixes if s in zone_names), None))
    return owners


def normalized_hostnames(hostnames: list[str]) -> list[str]:
    return [normalize_hostname(h, what="hostname", wildcard=True) for h in hostnames]


def _in_zone(hostnames: list[str], zone_name: str) -> bool:
    return any(h.removeprefix("*.") == zone_name or h.endswith("." + zone_name) for h in hostnames)


def list_origin_certs(conn: Connection, zone_id: str) -> list[Row[Any]]:
    zone = get_zone(conn, zone_id)
    rows = conn.execute(select(schema.origin_certs).where(schema.origin_certs.c.revoked_at.is_(None)))
    return [r for r in rows if _in_zone(json.loads(r.hostnames), zone.name)]


def revoke(conn: Connection, cert_id: str) -> Row[Any]:
    row = get_origin_cert(conn, cert_id)
    if row.revoked_at is None:
        conn.execute(
            update(schema.origin_certs).where(schema.origin_certs.c.id == cert_id).values(revoked_at=now_iso())
        )
    return get_origin_cert(conn, cert_id)


def revoked_fingerprints(conn: Connection, now: datetime) -> dict[str, str]:
    """Revoked certificates the edge must refuse: SHA-256 of the leaf's DER (hex) -> certificate id.

    Expired ones are left out: the origin handshake refuses them anyway (526, "certificate has expired"),
    and leaving them out keeps the set, which every strict pool key names, to the ones that matter.
    """
    table = schema.origin_certs
    rows = conn.execute(
        select(table.c.id, table.c.certificate).where(table.c.revoked_at.is_not(None), table.c.expires_on > to_iso(now))
    )
    return {
        x509.load_pem_x509_certificate(r.certificate.encode()).fingerprint(hashes.SHA256()).hex(): r.id for r in rows
    }
