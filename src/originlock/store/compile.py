"""Compile the store into the edge's immutable :class:`~originlock.snapshot.Snapshot`, whole or per zone.

A cold start compiles every zone (:func:`compile_assembly`); a change recompiles the zones it touched
into the same :class:`~originlock.snapshot.assembly.SnapshotAssembly` (:func:`refresh_assembly`). Either
way a handful of queries, whatever the number of zones. The AOP precedence lives in ``snapshot/aop.py``.
"""

from __future__ import annotations

import json
from collections import ChainMap, defaultdict
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.x509 import load_pem_x509_certificate
from sqlalchemy import Connection, Row, select

from originlock.snapshot.aop import Candidate, choose_client_cert
from originlock.snapshot.assembly import SnapshotAssembly, ZoneParts
from originlock.snapshot.model import ClientCert, DeploymentPki, EdgeCert, Route, Snapshot, SslMode
from originlock.snapshot.pacing import SLICE, yield_interpreter
from originlock.store import schema
from originlock.store.account_rulesets import compile_sources, zone_sources
from originlock.store.db import Store, from_iso
from originlock.store.fips import zone_is_fips
from originlock.store.origin_ca import revoked_fingerprints
from originlock.store.pki import load_pki
from originlock.store.ruleset_rules import compile_entrypoints
from originlock.store.sealing import KeySealer
from originlock.store.settings import AOP_ZONE_ENABLED, SETTINGS
from originlock.tls.hsts import security_header_fields

__all__ = [
    "compile_assembly",
    "compile_pki",
    "compile_snapshot",
    "compile_zones",
    "load_candidates",
    "refresh_assembly",
]


def _client_cert(row: Row[Any], key_pem: bytes, source: str) -> ClientCert:
    return ClientCert(
        id=row.id,
        source=source,  # type: ignore[arg-type]
        fingerprint=row.fingerprint,
        chain_pem=row.chain_pem.encode(),
        key_pem=key_pem,
        not_after=from_iso(row.expires_on),
        not_before=_not_before(row),
    )


def _not_before(row: Row[Any]) -> datetime:
    """Stored since migration 9; a row an older node wrote after it has none and its PEM is parsed (a parse
    per certificate was a tenth of a cold compile at 10k client certificates)."""
    if row.not_before is not None:
        return from_iso(row.not_before)
    return load_pem_x509_certificate(row.certificate.encode()).not_valid_before_utc


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


def _raw_rows(conn: Connection, query: Any) -> list[tuple[Any, ...]]:
    """The driver's own tuples for a query of plain columns (strings, booleans): SQLAlchemy's per-row
    processing cost four times the fetch itself for the 100k rows of ``dns_records``, and psycopg's
    row-by-row ``fetchone`` (iterating a result) a third of a cold compile."""
    result = conn.execute(query)
    cursor = result.cursor
    try:
        if cursor is None:
            return []
        # In slices: one fetchall of 100k rows is one C call holding the interpreter (and so the edge's event
        # loop, during a whole rebuild) for tens of milliseconds.
        rows: list[tuple[Any, ...]] = []
        while batch := cursor.fetchmany(_FETCH_SLICE):
            rows += batch
            if len(batch) == _FETCH_SLICE:
                yield_interpreter()
        return rows
    finally:
        result.close()


_FETCH_SLICE = 5000


#: Deadline of an incremental refresh's read transaction (a whole compile keeps the store's longer one).
REFRESH_DEADLINE = 10.0


def _zone_filter(query: Any, column: Any, zone_ids: Collection[str] | None) -> Any:
    return query if zone_ids is None else query.where(column.in_(list(zone_ids)))


def _settings(conn: Connection, zone_ids: Collection[str] | None) -> dict[str, Mapping[str, Any]]:
    """Every zone's effective settings in one query (one query per zone made a 10k-zone compile slow).

    Each zone's stored values in front of one shared dict of defaults (a ``ChainMap``: a compile reads a few
    settings per zone, where merging every default into 10k dicts cost more than reading them); the few
    distinct scalar values parsed once."""
    table = schema.zone_settings
    stored: dict[str, dict[str, Any]] = defaultdict(dict)
    parsed: dict[str, Any] = {}
    for zone_id, setting_id, raw in _raw_rows(
        conn, _zone_filter(select(table.c.zone_id, table.c.setting_id, table.c.value), table.c.zone_id, zone_ids)
    ):
        value = parsed.get(raw, _UNPARSED)
        if value is _UNPARSED:
            value = json.loads(raw)
            if value is None or isinstance(value, str | bool | int | float):  # immutable: safe to share
                parsed[raw] = value
        stored[zone_id][setting_id] = value
    defaults = {setting_id: spec.default for setting_id, spec in SETTINGS.items()}
    defaults[AOP_ZONE_ENABLED] = False
    return defaultdict(lambda: ChainMap({}, defaults), {z: ChainMap(v, defaults) for z, v in stored.items()})


_UNPARSED = object()


def _edge_certs(
    conn: Connection, store: Store, zone_ids: Collection[str] | None
) -> dict[str, list[tuple[int, str, EdgeCert]]]:
    table = schema.custom_certificates
    rows = conn.execute(_zone_filter(select(table).where(table.c.status == "active"), table.c.zone_id, zone_ids))
    out: dict[str, list[tuple[int, str, EdgeCert]]] = defaultdict(list)
    for r in rows:
        cert = EdgeCert(
            id=r.id,
            zone_id=r.zone_id,
            hosts=tuple(json.loads(r.hosts)),
            priority=r.priority,
            fingerprint=r.fingerprint,
            chain_pem=r.certificate.encode(),
            key_pem=store.sealer.open(bytes(r.key_sealed), f"edge:{r.id}"),
            not_after=from_iso(r.expires_on),
        )
        out[r.zone_id].append((r.priority, r.uploaded_on, cert))
    return out


def _candidates(
    conn: Connection, sealer: KeySealer, zone_ids: Collection[str] | None
) -> tuple[dict[str, list[Candidate]], dict[str, Candidate]]:
    """The stored AOP certificates of ``zone_ids`` (all when None) as precedence candidates, keys unsealed.

    The driver's tuples of the columns used (not SQLAlchemy rows of every column, the certificate's PEM
    among them): 10k certificates cost 0.2 CPU-s as rows, a cold compile's largest part after its routes."""
    zone_certs: dict[str, list[Candidate]] = defaultdict(list)
    hostname_certs: dict[str, Candidate] = {}
    t = schema.aop_certs
    columns = (t.c.id, t.c.zone_id, t.c.kind, t.c.chain_pem, t.c.key_sealed, t.c.fingerprint, t.c.expires_on)
    query = select(*columns, t.c.status, t.c.uploaded_on, t.c.not_before)
    rows = _raw_rows(conn, _zone_filter(query, t.c.zone_id, zone_ids))
    # Rows an older node wrote after migration 9 have no not_before: their PEMs, read for those rows only.
    missing = [row[0] for row in rows if row[9] is None]
    pems = (
        {r[0]: r[1] for r in conn.execute(select(t.c.id, t.c.certificate).where(t.c.id.in_(missing)))}
        if missing
        else {}
    )
    open_key = sealer.open
    for n, (cert_id, zone_id, kind, chain_pem, sealed, fingerprint, expires, status, uploaded, begins) in enumerate(
        rows
    ):
        if n % SLICE == SLICE - 1:
            yield_interpreter()
        cert = ClientCert(
            id=cert_id,
            source=kind,
            fingerprint=fingerprint,
            chain_pem=chain_pem.encode(),
            key_pem=open_key(bytes(sealed), cert_id),
            not_after=from_iso(expires),
            not_before=from_iso(begins)
            if begins is not None
            else load_pem_x509_certificate(pems[cert_id].encode()).not_valid_before_utc,
        )
        candidate = Candidate(cert, status, from_iso(uploaded))
        if kind == "zone":
            zone_certs[zone_id].append(candidate)
        else:
            hostname_certs[cert_id] = candidate
    return zone_certs, hostname_certs


def compile_pki(conn: Connection, store: Store, now: datetime) -> DeploymentPki:
    """The deployment-wide part of the snapshot: the CAs, the global client certificate, revocations."""
    cas = load_pki(conn, store.sealer)
    global_client = ClientCert(
        id="global",
        source="global",
        fingerprint=cas.origin_pull_leaf.cert.fingerprint(hashes.SHA256()).hex(),
        chain_pem=cas.origin_pull_leaf.cert_pem.encode(),
        key_pem=cas.origin_pull_leaf.key_pem,
        not_after=cas.origin_pull_leaf.cert.not_valid_after_utc,
    )
    return DeploymentPki(
        edge_ca_cert_pem=cas.edge_ca.cert_pem.encode(),
        edge_ca_key_pem=cas.edge_ca.key_pem,
        origin_ca_cert_pem=cas.origin_ca.cert_pem.encode(),
        global_client=global_client,
        # DELETE /certificates/{id}: refused in strict modes from this snapshot on (origin/connector.py).
        revoked_origin_certs=revoked_fingerprints(conn, now),
    )


def compile_zones(
    conn: Connection, store: Store, pki: DeploymentPki, now: datetime, zone_ids: Collection[str] | None = None
) -> dict[str, ZoneParts]:
    """Compile the zones ``zone_ids`` (every zone when None) into their snapshot parts, in a few queries
    whatever their number. Zones that do not exist (deleted) are absent from the answer."""
    zones = {r.id: r for r in conn.execute(_zone_filter(select(schema.zones), schema.zones.c.id, zone_ids)).all()}
    settings = _settings(conn, zone_ids)
    zone_certs, hostname_certs = _candidates(conn, store.sealer, zone_ids)
    assoc_table = schema.hostname_associations
    associations = {
        (r.zone_id, r.hostname): r
        for r in conn.execute(_zone_filter(select(assoc_table), assoc_table.c.zone_id, zone_ids)).all()
    }
    records = schema.dns_records
    routes: dict[str, dict[str, Route]] = defaultdict(dict)
    created: dict[str, dict[str, str]] = defaultdict(dict)
    dns_only: dict[str, set[str]] = defaultdict(set)
    columns = (records.c.zone_id, records.c.name, records.c.content, records.c.type, records.c.proxied)
    query = select(*columns, records.c.created_on).order_by(records.c.created_on)
    global_cert = pki.global_client
    # What a zone's settings decide, and its certificate choice for the hostnames without an association,
    # are computed once per zone into a template its routes are stamped from (Route.for_host): a
    # 100k-hostname compile spent most of its time deciding per hostname and constructing routes.
    templates: dict[str, dict[str, Any]] = {}

    def template(zone_id: str) -> dict[str, Any]:
        zs = settings[zone_id]
        ssl_mode, fips = SslMode(zs["ssl"]), zone_is_fips(zs, store.fips)
        choice = choose(zone_id, ssl_mode, fips, None)
        return Route.template(
            zone_id=zone_id,
            zone_name=zones[zone_id].name,
            ssl_mode=ssl_mode,
            always_use_https=zs["always_use_https"] == "on",
            min_tls_version=zs["min_tls_version"],
            client_cert=choice.cert,
            client_cert_error=choice.error,
            fips=fips,
            websockets=zs["websockets"] == "on",
            http2=zs["http2"] != "off",
            tls_1_3=zs["tls_1_3"] != "off",
            security_headers=security_header_fields(zs["security_header"]),
        )

    def choose(zone_id: str, ssl_mode: SslMode, fips: bool, assoc: Any) -> Any:
        zs = settings[zone_id]
        return choose_client_cert(
            ssl_mode=ssl_mode,
            association_enabled=assoc.enabled if assoc is not None else None,
            association_cert=hostname_certs.get(assoc.cert_id) if assoc is not None else None,
            zone_aop_enabled=bool(zs[AOP_ZONE_ENABLED]),
            zone_certs=zone_certs.get(zone_id, []),
            tls_client_auth=zs["tls_client_auth"] == "on",
            global_cert=global_cert,
            now=now,
            fips=fips,
        )

    for n, (zone_id, name, content, record_type, proxied, created_on) in enumerate(
        _raw_rows(conn, _zone_filter(query, records.c.zone_id, zone_ids))
    ):
        if n % SLICE == SLICE - 1:
            yield_interpreter()
        zone = zones.get(zone_id)
        if zone is None:
            continue
        if not proxied:
            dns_only[zone_id].add(name)
            continue
        zone_routes = routes[zone_id]
        if zone.paused or name in zone_routes:
            continue  # paused zones are not proxied; first record wins for round-robin names
        shared = templates.get(zone_id)
        if shared is None:
            shared = templates[zone_id] = template(zone_id)
        assoc = associations.get((zone_id, name)) if associations else None
        if assoc is not None:
            choice = choose(zone_id, shared["ssl_mode"], shared["fips"], assoc)
            shared = {**shared, "client_cert": choice.cert, "client_cert_error": choice.error}
        zone_routes[name] = Route.for_host(shared, name, content, record_type)
        created[zone_id][name] = created_on
    edge_certs = _edge_certs(conn, store, zone_ids)
    rulesets = schema.rulesets
    ruleset_rows = conn.execute(_zone_filter(select(rulesets), rulesets.c.zone_id, zone_ids)).all()
    waf = compile_entrypoints(ruleset_rows)
    waf_source: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    # Account-level rulesets its account deploys to a zone run before the zone's own (store/account_rulesets.py);
    # kept in waf_source too, so that the last-known-good copy enforces them as well.
    # The zones of one account share its sources: compiled once, not once per zone (compiled rulesets are
    # immutable).
    compiled_sources: dict[tuple[tuple[str, str, str], ...], dict[Any, Any]] = {}
    for zone_id, sources in zone_sources(conn, zone_ids).items():
        waf_source[zone_id] += sources
        key = tuple(sources)
        if key not in compiled_sources:
            compiled_sources[key] = compile_sources(sources)
        for phase, compiled in compiled_sources[key].items():
            phases = waf.setdefault(zone_id, {})
            phases[phase] = (*compiled, *phases.get(phase, ()))
    for row in ruleset_rows:
        waf_source[row.zone_id].append((row.id, row.phase, row.rules))
    expiries: dict[str, list[datetime]] = defaultdict(list)
    for zone_id, candidates in zone_certs.items():
        expiries[zone_id] += [c.cert.not_after for c in candidates]
    for (zone_id, _), assoc in associations.items():
        candidate = hostname_certs.get(assoc.cert_id) if assoc.cert_id else None
        if candidate is not None:
            expiries[zone_id].append(candidate.cert.not_after)
    return {
        zone_id: ZoneParts(
            zone_id=zone_id,
            routes=routes.get(zone_id, {}),
            created=created.get(zone_id, {}),
            dns_only=frozenset(dns_only.get(zone_id, ())),
            edge_certs=tuple(edge_certs.get(zone_id, ())),
            waf=waf.get(zone_id),
            waf_source=tuple(waf_source.get(zone_id, ())),
            next_expiry=min((t for t in expiries.get(zone_id, ()) if t > now), default=None),
        )
        for zone_id in zones
    }


def read_generation(conn: Connection) -> int:
    return int(conn.execute(select(schema.generation.c.value)).scalar_one())


def compile_assembly(store: Store, now: datetime) -> tuple[int, SnapshotAssembly]:
    """Everything, in one read transaction (a consistent view): the generation read and the assembly."""
    with store.read() as conn:
        generation = read_generation(conn)
        pki = compile_pki(conn, store, now)
        assembly = SnapshotAssembly(pki, compile_zones(conn, store, pki, now).values())
    assembly.pki_expiry = _future(pki, now)
    return generation, assembly


def _future(pki: DeploymentPki, now: datetime) -> datetime | None:
    leaf = pki.global_client
    return leaf.not_after if leaf is not None and leaf.not_after > now else None


def refresh_assembly(
    store: Store, assembly: SnapshotAssembly, zone_ids: Collection[str], now: datetime, *, pki: bool = False
) -> None:
    """Recompile ``zone_ids`` (and the deployment part when ``pki``) into ``assembly``. The caller knows
    the generation from the changes it applies (no query for it: every round trip is on a change's way to
    the edge). A few zones read in well under a second: a read still running after :data:`REFRESH_DEADLINE`
    is a hanging store, cut so the caller can retry."""
    # Not one transaction: a write committed between two of these queries is notified after its commit,
    # and its zones are then read again (Store.read, consistent=False).
    with store.read(timeout=REFRESH_DEADLINE, consistent=False) as conn:
        if pki:
            assembly.pki = compile_pki(conn, store, now)
            assembly.pki_expiry = _future(assembly.pki, now)
        parts = compile_zones(conn, store, assembly.pki, now, zone_ids)
    assembly.replace(parts.values(), [z for z in zone_ids if z not in parts])


def compile_snapshot(store: Store, now: datetime) -> Snapshot:
    """Read everything the edge needs in one read transaction (a consistent view) and build a snapshot."""
    generation, assembly = compile_assembly(store, now)
    return assembly.snapshot(generation)
