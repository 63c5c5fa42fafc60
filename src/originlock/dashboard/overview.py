"""What the dashboard shows, read from the store for one token: zones, proxied hostnames, the client
certificate the edge presents to each origin and why, the exposure monitor's verdicts, certificate expiry.

Plain data (frozen dataclasses) for ``pages.py`` to render; nothing here knows HTML. Every zone and every
section is filtered by the token exactly as the API would filter it (:func:`~originlock.dashboard.session.permitted`):
zones need ``zone:read``, hostnames ``dns:read``, certificates and verdicts ``ssl:read``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from originlock.dashboard.session import permitted
from originlock.snapshot.model import SslMode
from originlock.store import aop, custom_certs, schema
from originlock.store.db import Store, from_iso
from originlock.store.dns import list_records
from originlock.store.dns_query import RecordQuery
from originlock.store.identity import edge_choice
from originlock.store.origin_checks import OriginCheck, get_check
from originlock.store.settings import AOP_ZONE_ENABLED, zone_settings_map
from originlock.store.tokens import Token
from originlock.store.zones import list_zones
from originlock.tls.certs import describe, load_certificates

__all__ = ["CertExpiry", "HostnameView", "Overview", "ZoneView", "build_overview", "visible_zones"]

#: Zones and records read per page: far more than a screen shows; the dashboard is for one deployment.
MAX_ZONES = 500
MAX_RECORDS = 5000


@dataclass(frozen=True)
class PresentedCert:
    """The client certificate the edge presents to an origin."""

    id: str
    #: ``hostname``, ``zone`` or ``global``.
    source: str
    subject: str
    expires_on: datetime


@dataclass(frozen=True)
class HostnameView:
    hostname: str
    origin: str
    ssl_mode: str
    #: None when the edge presents no certificate (see ``reason``) or fails closed (see ``error``).
    cert: PresentedCert | None
    #: The precedence step that decided (1-6) and that step in words (snapshot/aop.py).
    step: int
    reason: str
    #: Set when the chosen certificate cannot be used: the edge answers 525 rather than use a weaker one.
    error: str | None
    #: The exposure monitor's latest check of this origin; None when it has not checked it yet.
    check: OriginCheck | None


@dataclass(frozen=True)
class ZoneView:
    id: str
    name: str
    ssl_mode: str
    tls_client_auth: str
    zone_aop_enabled: bool
    #: None when the token may not read DNS records.
    hostnames: tuple[HostnameView, ...] | None
    #: False when the token may not read SSL/TLS (then certificates and verdicts are not shown).
    ssl_visible: bool
    #: Whether the token may change the zone's SSL/TLS settings (``ssl:edit``): the page offers the form.
    editable: bool = False


@dataclass(frozen=True)
class CertExpiry:
    """One certificate on the expiry timeline."""

    zone: str
    #: What it is: ``AOP zone``, ``AOP hostname``, ``edge (custom)``, ``shared AOP leaf``, ``CA``...
    kind: str
    id: str
    subject: str
    expires_on: datetime
    status: str


@dataclass(frozen=True)
class Overview:
    zones: tuple[ZoneView, ...]
    expiries: tuple[CertExpiry, ...]
    #: Zone names this token may see, for filtering the edge's counters.
    zone_names: frozenset[str]
    #: Zone names whose WAF activity the token may see (``firewall:read``).
    waf_zone_names: frozenset[str]


def _subject(chain_pem: bytes | str) -> str:
    try:
        return describe(load_certificates(chain_pem)[0]).subject
    except ValueError:
        return "(unreadable certificate)"


def _hostnames(conn: Connection, store: Store, zone_id: str, ssl_mode: str, now: datetime) -> list[HostnameView]:
    records, _ = list_records(conn, zone_id, query=RecordQuery(proxied=True), offset=0, limit=MAX_RECORDS)
    views = []
    for record in records:
        choice = edge_choice(conn, zone_id, record.name, now, SslMode(ssl_mode), deployment_fips=store.fips)
        cert = choice.cert
        presented = (
            PresentedCert(cert.id, cert.source, _subject(cert.chain_pem), cert.not_after) if cert is not None else None
        )
        views.append(
            HostnameView(
                hostname=record.name,
                origin=record.content,
                ssl_mode=ssl_mode,
                cert=presented,
                step=choice.step,
                reason=choice.reason,
                error=choice.error,
                check=get_check(conn, zone_id, record.name),
            )
        )
    return views


def _zone_expiries(conn: Connection, zone_id: str, zone_name: str) -> list[CertExpiry]:
    found = []
    for kind, label in (("zone", "AOP zone certificate"), ("hostname", "AOP hostname certificate")):
        for row in aop.list_certs(conn, zone_id, kind):  # type: ignore[arg-type]
            found.append(
                CertExpiry(zone_name, label, row.id, _subject(row.certificate), from_iso(row.expires_on), row.status)
            )
    for row in custom_certs.list_certs(conn, zone_id):
        subject, expires = _subject(row.certificate), from_iso(row.expires_on)
        found.append(CertExpiry(zone_name, "edge certificate (custom)", row.id, subject, expires, row.status))
    return found


def _deployment_expiries(conn: Connection) -> list[CertExpiry]:
    labels = {
        "origin-pull-leaf": "shared AOP certificate (tls_client_auth)",
        "origin-pull-ca": "origin-pull CA",
        "edge-ca": "edge CA",
        "origin-ca": "origin CA",
    }
    found = []
    for row in conn.execute(select(schema.pki.c.name, schema.pki.c.cert_pem)):
        if row.name in labels:
            info = describe(load_certificates(row.cert_pem)[0])
            found.append(
                CertExpiry("(deployment)", labels[row.name], row.name, info.subject, info.expires_on, "active")
            )
    return found


def visible_zones(store: Store, token: Token) -> tuple[frozenset[str], frozenset[str]]:
    """Names of the zones ``token`` may read, and of those whose WAF activity it may read (for the live counters)."""
    with store.read() as conn:
        rows, _ = list_zones(conn, limit=MAX_ZONES)
    readable = [z for z in rows if permitted(token, "zone:read", z.id)]
    return (
        frozenset(z.name for z in readable),
        frozenset(z.name for z in readable if permitted(token, "firewall:read", z.id)),
    )


def build_overview(store: Store, token: Token, now: datetime) -> Overview:
    """Everything the overview page shows that ``token`` may see."""
    zones: list[ZoneView] = []
    expiries: list[CertExpiry] = []
    with store.read() as conn:
        rows, _ = list_zones(conn, limit=MAX_ZONES)
        for zone in rows:
            if not permitted(token, "zone:read", zone.id):
                continue
            settings = zone_settings_map(conn, zone.id)
            ssl_visible = permitted(token, "ssl:read", zone.id)
            hostnames = None
            if permitted(token, "dns:read", zone.id):
                hostnames = tuple(_hostnames(conn, store, zone.id, settings["ssl"], now)) if ssl_visible else ()
            zones.append(
                ZoneView(
                    id=zone.id,
                    name=zone.name,
                    ssl_mode=settings["ssl"],
                    tls_client_auth=settings["tls_client_auth"],
                    zone_aop_enabled=bool(settings[AOP_ZONE_ENABLED]),
                    hostnames=hostnames,
                    ssl_visible=ssl_visible,
                    editable=permitted(token, "ssl:edit", zone.id),
                )
            )
            if ssl_visible:
                expiries += _zone_expiries(conn, zone.id, zone.name)
        # Deployment-wide certificates concern every zone: shown to tokens that are not limited to some zones.
        if token.zone_ids is None and permitted(token, "ssl:read"):
            expiries += _deployment_expiries(conn)
    expiries.sort(key=lambda e: e.expires_on)
    return Overview(
        zones=tuple(zones),
        expiries=tuple(expiries),
        zone_names=frozenset(z.name for z in zones),
        waf_zone_names=frozenset(z.name for z in zones if permitted(token, "firewall:read", z.id)),
    )
