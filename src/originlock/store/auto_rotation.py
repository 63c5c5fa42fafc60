"""Automatic rotation of a zone's AOP certificate (beyond Cloudflare).

Opt-in per zone (setting ``aop_auto_rotation``). The deployment keeps a CA for the zone — the one CA the
origin trusts, for good — and issues the zone's client certificate from it. At two thirds of a
certificate's lifetime a new one is issued; the edge switches to it at once (newest active wins, as
for uploads), and the old one stays, still valid, through an overlap window so fleet nodes and
in-flight connections finish with it, then is deleted well before it expires. No human step, no outage;
both certificates are ordinary zone certificates in the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from sqlalchemy import Connection, insert, select

from originlock.store import schema
from originlock.store.aop import delete_cert, upload_cert
from originlock.store.audit import JOB_METHOD, AuditEvent, record
from originlock.store.db import now_iso
from originlock.store.sealing import KeySealer
from originlock.store.settings import set_aop_zone_enabled, zone_settings_map
from originlock.store.zones import get_zone
from originlock.tls.certs import load_certificates, load_private_key
from originlock.tls.issue import Issued, issue_ca, issue_leaf

__all__ = ["AUTO_SETTING", "LEAF_DAYS", "OVERLAP", "Rotation", "enable", "pending", "rotate_due", "zone_ca"]

AUTO_SETTING = "aop_auto_rotation"
#: Lifetime of an automatically issued certificate: short, since renewal costs nothing (ACME's 90 days).
LEAF_DAYS = 90
#: Renew when this fraction of the lifetime has passed.
RENEW_AT = 2 / 3
#: How long the previous certificate is kept after its successor was issued (a sixth of the lifetime:
#: 15 days, leaving the old one another 15 days of validity when it is deleted).
OVERLAP = timedelta(days=LEAF_DAYS / 6)
ZONE_CA_DAYS = 3650


@dataclass(frozen=True)
class Rotation:
    zone_id: str
    issued: str | None
    deleted: tuple[str, ...]


def _ca_name(zone_id: str) -> str:
    return f"zone-ca:{zone_id}"


def zone_ca(conn: Connection, sealer: KeySealer, zone_id: str, now: datetime) -> Issued:
    """The zone's own CA, created on first use and kept for good (the origin trusts it)."""
    name = _ca_name(zone_id)
    row = conn.execute(select(schema.pki).where(schema.pki.c.name == name)).first()
    if row is not None:
        key = load_private_key(sealer.open(bytes(row.key_sealed), f"pki:{name}"))
        return Issued(load_certificates(row.cert_pem)[0], key)
    zone = get_zone(conn, zone_id)
    ca = issue_ca(f"originlock AOP CA for {zone.name}", now=now, days=ZONE_CA_DAYS, path_length=0)
    conn.execute(
        insert(schema.pki).values(
            name=name, cert_pem=ca.cert_pem, key_sealed=sealer.seal(ca.key_pem, f"pki:{name}"), created_on=now_iso()
        )
    )
    return ca


def _issue(conn: Connection, sealer: KeySealer, zone_id: str, now: datetime) -> str:
    ca = zone_ca(conn, sealer, zone_id, now)
    zone = get_zone(conn, zone_id)
    leaf = issue_leaf(ca, zone.name, now=now, days=LEAF_DAYS, organization="originlock automatic AOP")
    # Chain = leaf + zone CA, so edge_identity's CA bundle names the CA the origin must trust.
    row = upload_cert(conn, sealer, zone_id, "zone", leaf.cert_pem + ca.cert_pem, leaf.key_pem.decode(), now)
    return str(row.id)


def _auto_certs(conn: Connection, zone_id: str) -> list[tuple[str, datetime, datetime]]:
    """(id, not_before, not_after) of the zone certificates issued by the zone's CA, oldest first.

    Validity comes from the certificates themselves, not from upload timestamps: it is what the renewal
    rule is about, and it follows the clock the certificates were issued with.
    """
    ca_row = conn.execute(select(schema.pki.c.cert_pem).where(schema.pki.c.name == _ca_name(zone_id))).first()
    if ca_row is None:
        return []
    ca_subject = load_certificates(ca_row.cert_pem)[0].subject.rfc4514_string()
    table = schema.aop_certs
    rows = conn.execute(
        select(table.c.id, table.c.issuer, table.c.certificate).where(
            table.c.zone_id == zone_id, table.c.kind == "zone", table.c.status == "active"
        )
    )
    found = []
    for row in rows:
        if row.issuer == ca_subject:
            cert = load_certificates(row.certificate)[0]
            found.append((row.id, cert.not_valid_before_utc, cert.not_valid_after_utc))
    return sorted(found, key=lambda item: item[1])


def enable(conn: Connection, sealer: KeySealer, zone_id: str, now: datetime) -> str | None:
    """Turned on: make sure the zone has a current automatic certificate and zone-level AOP is enabled."""
    set_aop_zone_enabled(conn, zone_id, True)
    if _auto_certs(conn, zone_id):
        return None
    return _issue(conn, sealer, zone_id, now)


def _plan(certs: list[tuple[str, datetime, datetime]], now: datetime) -> tuple[bool, list[str]]:
    """(issue a new certificate?, ids to delete) for one zone's automatic certificates, oldest first."""
    if not certs:
        return True, []
    _, newest_from, newest_until = certs[-1]
    renew = now >= newest_from + (newest_until - newest_from) * RENEW_AT
    # Every older certificate goes once its successor has been in place for the overlap window.
    retire = [old for (old, _, _), (_, succ_from, _) in pairwise(certs) if now >= succ_from + OVERLAP]
    return renew, retire


def _auto_zones(conn: Connection) -> list[str]:
    zone_ids = conn.execute(select(schema.zones.c.id)).scalars()
    return [z for z in zone_ids if zone_settings_map(conn, z).get(AUTO_SETTING) == "on"]


def pending(conn: Connection, now: datetime) -> list[str]:
    """Zones with a renewal or retirement due: read-only, so the job writes only when there is work."""
    due = []
    for zone_id in _auto_zones(conn):
        renew, retire = _plan(_auto_certs(conn, zone_id), now)
        if renew or retire:
            due.append(zone_id)
    return due


def _audit(conn: Connection, zone_id: str, issued: str | None, retired: list[str]) -> None:
    """The audit log names the rotation job as the actor (no token) for what it changed, in its transaction."""
    zone = get_zone(conn, zone_id)
    path = f"/zones/{zone_id}/origin_tls_client_auth"
    changes = [("create", issued)] if issued else []
    for action, cert_id in [*changes, *(("delete", old) for old in retired)]:
        value = {"id": cert_id, "automatic": True}
        event = AuditEvent(
            account_id=zone.account_id,
            zone_id=zone_id,
            zone_name=zone.name,
            token_id=None,
            actor_ip=None,
            action=action,
            method=JOB_METHOD,
            path=path,
            resource_type="origin_tls_client_auth",
            resource_id=cert_id,
            old_value=value if action == "delete" else None,
            new_value=value if action == "create" else None,
        )
        record(conn, event)


def rotate_due(conn: Connection, sealer: KeySealer, now: datetime) -> list[Rotation]:
    """Renew and retire automatic certificates of every opted-in zone; returns what changed."""
    changes = []
    for zone_id in _auto_zones(conn):
        renew, retire = _plan(_auto_certs(conn, zone_id), now)
        issued = _issue(conn, sealer, zone_id, now) if renew else None
        for old_id in retire:
            delete_cert(conn, zone_id, "zone", old_id)
        if issued or retire:
            _audit(conn, zone_id, issued, retire)
            changes.append(Rotation(zone_id, issued, tuple(retire)))
    return changes
