"""Compile the store into the edge's immutable :class:`~originlock.snapshot.Snapshot`.

Runs once per store generation; the AOP precedence itself lives in ``snapshot/aop.py``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.x509 import load_pem_x509_certificate
from sqlalchemy import Connection, Row, select

from originlock.snapshot.aop import Candidate, choose_client_cert
from originlock.snapshot.model import ClientCert, DeploymentPki, EdgeCert, Route, Snapshot, SslMode
from originlock.store import schema
from originlock.store.db import Store, from_iso
from originlock.store.fips import zone_is_fips
from originlock.store.origin_ca import revoked_fingerprints
from originlock.store.pki import load_pki
from originlock.store.ruleset_rules import compile_entrypoints
from originlock.store.sealing import KeySealer
from originlock.store.settings import AOP_ZONE_ENABLED, zone_settings_map

__all__ = ["compile_snapshot", "load_candidates"]


def _client_cert(row: Row[Any], key_pem: bytes, source: str) -> ClientCert:
    return ClientCert(
        id=row.id,
        source=source,  # type: ignore[arg-type]
        fingerprint=row.fingerprint,
        chain_pem=row.chain_pem.encode(),
        key_pem=key_pem,
        not_after=from_iso(row.expires_on),
        not_before=load_pem_x509_certificate(row.certificate.encode()).not_valid_before_utc,
    )


def load_candidates(
    conn: Connection, sealer: KeySealer | None, zone_id: str | None = None
) -> tuple[dict[str, list[Candidate]], dict[str, Candidate]]:
    """Stored AOP certificates as precedence candidates: zone certificates by zone id, hostname ones by id.

    With ``sealer`` the keys are unsealed (the snapshot); without it they stay empty (public answers such
    as ``edge_identity``, which must not touch a key).
    """
    zone_certs: dict[str, list[Candidate]] = defaultdict(list)
    hostname_certs: dict[str, Candidate] = {}
    query = select(schema.aop_certs)
    if zone_id is not None:
        query = query.where(schema.aop_certs.c.zone_id == zone_id)
    for row in conn.execute(query):
        key = sealer.open(bytes(row.key_sealed), row.id) if sealer is not None else b""
        candidate = Candidate(_client_cert(row, key, row.kind), row.status, from_iso(row.uploaded_on))
        if row.kind == "zone":
            zone_certs[row.zone_id].append(candidate)
        else:
            hostname_certs[row.id] = candidate
    return zone_certs, hostname_certs


def _edge_certs(conn: Connection, store: Store) -> tuple[EdgeCert, ...]:
    table = schema.custom_certificates
    rows = conn.execute(
        select(table).where(table.c.status == "active").order_by(table.c.priority.desc(), table.c.uploaded_on.desc())
    )
    return tuple(
        EdgeCert(
            id=r.id,
            zone_id=r.zone_id,
            hosts=tuple(json.loads(r.hosts)),
            priority=r.priority,
            fingerprint=r.fingerprint,
            chain_pem=r.certificate.encode(),
            key_pem=store.sealer.open(bytes(r.key_sealed), f"edge:{r.id}"),
            not_after=from_iso(r.expires_on),
        )
        for r in rows
    )


# --- WAF rulesets (issue 6): kept in this one helper so the rest of the module stays independent -----------


def _waf(conn: Connection) -> dict[str, dict[Any, Any]]:
    """Every zone's compiled entry-point rulesets, per phase (``store/ruleset_rules.py`` does the work)."""
    return compile_entrypoints(conn.execute(select(schema.rulesets)))


# ------------------------------------------------------------------------------------------------------


def compile_snapshot(store: Store, now: datetime) -> Snapshot:
    """Read everything the edge needs in one read transaction (a consistent view) and build a snapshot."""
    with store.read() as conn:
        generation = int(conn.execute(select(schema.generation.c.value)).scalar_one())
        cas = load_pki(conn, store.sealer)
        global_client = ClientCert(
            id="global",
            source="global",
            fingerprint=cas.origin_pull_leaf.cert.fingerprint(hashes.SHA256()).hex(),
            chain_pem=cas.origin_pull_leaf.cert_pem.encode(),
            key_pem=cas.origin_pull_leaf.key_pem,
            not_after=cas.origin_pull_leaf.cert.not_valid_after_utc,
        )
        zone_certs, hostname_certs = load_candidates(conn, store.sealer)
        associations = {(r.zone_id, r.hostname): r for r in conn.execute(select(schema.hostname_associations))}
        zones = {r.id: r for r in conn.execute(select(schema.zones))}
        settings = {zone_id: zone_settings_map(conn, zone_id) for zone_id in zones}
        routes: dict[str, Route] = {}
        dns_only: set[str] = set()
        records = conn.execute(select(schema.dns_records).order_by(schema.dns_records.c.created_on))
        for record in records:
            if not record.proxied:
                dns_only.add(record.name)
                continue
            zone = zones[record.zone_id]
            if zone.paused or record.name in routes:
                continue  # paused zones are not proxied; first record wins for round-robin names
            zs = settings[zone.id]
            ssl_mode = SslMode(zs["ssl"])
            assoc = associations.get((zone.id, record.name))
            fips = zone_is_fips(zs, store.fips)
            choice = choose_client_cert(
                ssl_mode=ssl_mode,
                association_enabled=assoc.enabled if assoc is not None else None,
                association_cert=hostname_certs.get(assoc.cert_id) if assoc is not None else None,
                zone_aop_enabled=bool(zs[AOP_ZONE_ENABLED]),
                zone_certs=zone_certs.get(zone.id, []),
                tls_client_auth=zs["tls_client_auth"] == "on",
                global_cert=global_client,
                now=now,
                fips=fips,
            )
            routes[record.name] = Route(
                hostname=record.name,
                zone_id=zone.id,
                zone_name=zone.name,
                origin=record.content,
                record_type=record.type,
                ssl_mode=ssl_mode,
                always_use_https=zs["always_use_https"] == "on",
                min_tls_version=zs["min_tls_version"],
                client_cert=choice.cert,
                client_cert_error=choice.error,
                fips=fips,
                websockets=zs["websockets"] == "on",
            )
        edge_certs = _edge_certs(conn, store)
        waf = _waf(conn)
        pki = DeploymentPki(
            edge_ca_cert_pem=cas.edge_ca.cert_pem.encode(),
            edge_ca_key_pem=cas.edge_ca.key_pem,
            origin_ca_cert_pem=cas.origin_ca.cert_pem.encode(),
            global_client=global_client,
            # DELETE /certificates/{id}: refused in strict modes from this snapshot on (origin/connector.py).
            revoked_origin_certs=revoked_fingerprints(conn, now),
        )
    return Snapshot(
        generation=generation,
        routes=routes,
        pki=pki,
        dns_only=frozenset(dns_only - set(routes)),
        edge_certs=edge_certs,
        waf=waf,
    )
