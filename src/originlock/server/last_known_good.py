"""The last-known-good snapshot on disk: a node that starts while the store is unreachable serves it.

Theory of operation. The file is a small SQLite database in the data directory
(``last-known-good.db``, mode 0600): one row per zone holding that zone's
:class:`~originlock.snapshot.assembly.ZoneParts` as JSON, and one row for the deployment part and the
generation. A change rewrites the rows of the zones it touched (a whole rebuild rewrites every row), in
one transaction, so the file always holds one consistent generation.

Private keys are never written in clear: each one is sealed with the node's master key
(:class:`~originlock.store.sealing.KeySealer`, AES-256-GCM bound to the certificate's fingerprint), as
the store itself keeps them, and unsealed again when the file is loaded. Compiled WAF rules are code,
so their stored source is saved and compiled again at load.

JSON rather than pickle: loading the file must never run code from it.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from originlock.snapshot.assembly import SnapshotAssembly, ZoneParts
from originlock.snapshot.model import ClientCert, DeploymentPki, EdgeCert, Route, SslMode
from originlock.snapshot.pacing import yield_interpreter
from originlock.store.ruleset_rules import SOURCE_PREFIX, compile_entrypoints, compile_sources
from originlock.store.sealing import KeySealer
from originlock.tls.hsts import saved_fields

__all__ = ["FILE_NAME", "LastKnownGood", "Saved", "SavedView"]

FILE_NAME = "last-known-good.db"
#: Written by this version; :data:`_READS` are loaded (format 1 routes are read by ``_load_routes_1``).
_FORMAT = 2
_READS = frozenset({"1", "2"})


@dataclass(frozen=True)
class SavedView:
    """What one save writes: a consistent state of an assembly, taken between two refreshes."""

    generation: int
    pki: DeploymentPki
    pki_expiry: datetime | None
    parts: list[ZoneParts]
    #: Wall-clock time the generation was last confirmed current.
    confirmed_at: float


@dataclass(frozen=True)
class Saved:
    generation: int
    #: Wall-clock time the saved generation was last confirmed current.
    saved_at: float
    assembly: SnapshotAssembly


class _Codec:
    def __init__(self, sealer: KeySealer) -> None:
        self._sealer = sealer

    def seal(self, key_pem: bytes, fingerprint: str) -> str:
        return base64.b64encode(self._sealer.seal(key_pem, f"lkg:{fingerprint}")).decode()

    def open(self, sealed: str, fingerprint: str) -> bytes:
        return self._sealer.open(base64.b64decode(sealed), f"lkg:{fingerprint}")

    def client_cert(self, cert: ClientCert) -> dict[str, Any]:
        return {
            "id": cert.id,
            "source": cert.source,
            "fingerprint": cert.fingerprint,
            "chain_pem": cert.chain_pem.decode(),
            "key": self.seal(cert.key_pem, cert.fingerprint),
            "not_after": cert.not_after.isoformat(),
            # A pending certificate must stay pending when served from disk (never presented early).
            "not_before": cert.not_before.isoformat() if cert.not_before is not None else None,
        }

    def load_client_cert(self, d: dict[str, Any]) -> ClientCert:
        return ClientCert(
            id=d["id"],
            source=d["source"],
            fingerprint=d["fingerprint"],
            chain_pem=d["chain_pem"].encode(),
            key_pem=self.open(d["key"], d["fingerprint"]),
            not_after=datetime.fromisoformat(d["not_after"]),
            not_before=datetime.fromisoformat(d["not_before"]) if d.get("not_before") else None,
        )

    def pki(self, pki: DeploymentPki) -> dict[str, Any]:
        return {
            "edge_ca_cert_pem": pki.edge_ca_cert_pem.decode(),
            "edge_ca_key": self.seal(pki.edge_ca_key_pem, "edge-ca"),
            "origin_ca_cert_pem": pki.origin_ca_cert_pem.decode(),
            "global_client": self.client_cert(pki.global_client) if pki.global_client else None,
            "revoked": dict(pki.revoked_origin_certs),
        }

    def load_pki(self, d: dict[str, Any]) -> DeploymentPki:
        return DeploymentPki(
            edge_ca_cert_pem=d["edge_ca_cert_pem"].encode(),
            edge_ca_key_pem=self.open(d["edge_ca_key"], "edge-ca"),
            origin_ca_cert_pem=d["origin_ca_cert_pem"].encode(),
            global_client=self.load_client_cert(d["global_client"]) if d["global_client"] else None,
            revoked_origin_certs=d["revoked"],
        )

    def zone(self, part: ZoneParts) -> str:
        """Format 2: a zone's routes by column, their shared fields once per distinct set (a "shape"): the
        routes of a zone nearly always share all but their name, origin and record type. Format 1 kept every
        field of every route, and loading it (41 MB at 100k hostnames) cost more than compiling the store."""
        certs: dict[str, dict[str, Any]] = {}
        shapes: dict[tuple[Any, ...], int] = {}
        names, created, origins, types, shape_of = [], [], [], [], []
        for name, route in part.routes.items():
            cert = route.client_cert
            ref = None
            if cert is not None:
                ref = "global" if cert.source == "global" else f"{cert.id}:{cert.fingerprint}"
                if ref != "global" and ref not in certs:
                    certs[ref] = self.client_cert(cert)
            shape = (
                route.zone_name,
                route.ssl_mode.value,
                route.always_use_https,
                route.min_tls_version,
                ref,
                route.client_cert_error,
                route.fips,
                route.websockets,
                route.tls_1_3,
                tuple((name.decode("ascii"), value.decode("ascii")) for name, value in route.security_headers),
                route.http2,
            )
            names.append(name)
            created.append(part.created.get(name, ""))
            origins.append(route.origin)
            types.append(route.record_type)
            shape_of.append(shapes.setdefault(shape, len(shapes)))
        routes = {
            "shapes": [[*shape[:9], [list(field) for field in shape[9]], shape[10]] for shape in shapes],
            "names": names,
            "created": created,
            "origins": origins,
            "types": types,
            "shape": shape_of,
        }
        edge = [
            [
                priority,
                uploaded,
                {
                    "id": c.id,
                    "hosts": list(c.hosts),
                    "priority": c.priority,
                    "fingerprint": c.fingerprint,
                    "chain_pem": c.chain_pem.decode(),
                    "key": self.seal(c.key_pem, c.fingerprint),
                    "not_after": c.not_after.isoformat(),
                },
            ]
            for priority, uploaded, c in part.edge_certs
        ]
        return json.dumps(
            {
                "hosts": routes,
                "certs": certs,
                "dns_only": sorted(part.dns_only),
                "edge_certs": edge,
                "waf_source": [list(w) for w in part.waf_source],
                "next_expiry": part.next_expiry.isoformat() if part.next_expiry else None,
            }
        )

    def _load_routes(
        self, zone_id: str, hosts: dict[str, Any], certs: dict[str, ClientCert]
    ) -> tuple[dict[str, Route], dict[str, str]]:
        """Format 2 (:meth:`zone`): each shape made a template once, its routes stamped from it (Route.for_host)."""
        templates = [
            Route.template(
                zone_id=zone_id,
                zone_name=zone_name,
                ssl_mode=SslMode(ssl_mode),
                always_use_https=https,
                min_tls_version=min_tls,
                client_cert=certs.get(ref) if ref else None,
                client_cert_error=error,
                fips=fips,
                websockets=websockets,
                tls_1_3=tls_1_3,
                security_headers=saved_fields(headers),
                http2=http2,
            )
            for zone_name, ssl_mode, https, min_tls, ref, error, fips, websockets, tls_1_3, headers, http2 in hosts[
                "shapes"
            ]
        ]
        names = hosts["names"]
        for_host = Route.for_host
        routes = {
            name: for_host(templates[shape], name, origin, record_type)
            for name, origin, record_type, shape in zip(
                names, hosts["origins"], hosts["types"], hosts["shape"], strict=True
            )
        }
        return routes, dict(zip(names, hosts["created"], strict=True))

    def _load_routes_1(
        self, zone_id: str, rows: list[list[Any]], certs: dict[str, ClientCert]
    ) -> tuple[dict[str, Route], dict[str, str]]:
        """Format 1: every field of every route (files saved before format 2)."""
        routes: dict[str, Route] = {}
        templates: dict[tuple[Any, ...], dict[str, object]] = {}
        for name, _, zone_name, origin, record_type, ssl_mode, https, min_tls, ref, error, fips, *rest in rows:
            # A copy saved before the websockets setting existed has no 12th field: Cloudflare's default, on;
            # one saved before tls_1_3 and security_header has no 13th and 14th: TLS 1.3 on, no fields; one
            # saved before http2 has no 15th: on.
            extra = len(rest)
            websockets = bool(rest[0]) if extra else True
            tls_1_3 = bool(rest[1]) if extra > 1 else True
            saved_headers = rest[2] if extra > 2 else None
            http2 = bool(rest[3]) if extra > 3 else True
            headers = json.dumps(saved_headers) if saved_headers else ""  # hashable; usually empty
            key = (zone_name, ssl_mode, https, min_tls, ref, error, fips, websockets, tls_1_3, headers, http2)
            template = templates.get(key)
            if template is None:
                template = templates[key] = Route.template(
                    zone_id=zone_id,
                    zone_name=zone_name,
                    ssl_mode=SslMode(ssl_mode),
                    always_use_https=https,
                    min_tls_version=min_tls,
                    client_cert=certs.get(ref) if ref else None,
                    client_cert_error=error,
                    fips=fips,
                    websockets=websockets,
                    tls_1_3=tls_1_3,
                    security_headers=saved_fields(saved_headers) if extra > 2 else (),
                    http2=http2,
                )
            routes[name] = Route.for_host(template, name, origin, record_type)
        return routes, {row[0]: row[1] for row in rows}

    def load_zone(self, zone_id: str, body: str, pki: DeploymentPki) -> ZoneParts:
        d = json.loads(body)
        certs = {ref: self.load_client_cert(c) for ref, c in d["certs"].items()}
        certs["global"] = pki.global_client  # type: ignore[assignment]
        if "hosts" in d:
            routes, created = self._load_routes(zone_id, d["hosts"], certs)
        else:
            routes, created = self._load_routes_1(zone_id, d["routes"], certs)
        edge = tuple(
            (
                priority,
                uploaded,
                EdgeCert(
                    id=c["id"],
                    zone_id=zone_id,
                    hosts=tuple(c["hosts"]),
                    priority=c["priority"],
                    fingerprint=c["fingerprint"],
                    chain_pem=c["chain_pem"].encode(),
                    key_pem=self.open(c["key"], c["fingerprint"]),
                    not_after=datetime.fromisoformat(c["not_after"]),
                ),
            )
            for priority, uploaded, c in d["edge_certs"]
        )
        waf_source = tuple((r[0], r[1], r[2]) for r in d["waf_source"])
        account = [w for w in waf_source if w[0].startswith(SOURCE_PREFIX)]
        rows = [
            SimpleNamespace(zone_id=zone_id, id=i, phase=phase, rules=rules)
            for i, phase, rules in waf_source
            if not i.startswith(SOURCE_PREFIX)
        ]
        waf = compile_entrypoints(rows).get(zone_id) if rows else None
        if account:  # account-level rulesets run before the zone's own, as compiled from the store
            waf = dict(waf or {})
            for phase, compiled in compile_sources(account).items():
                waf[phase] = (*compiled, *waf.get(phase, ()))
        return ZoneParts(
            zone_id=zone_id,
            routes=routes,
            created=created,
            dns_only=frozenset(d["dns_only"]),
            edge_certs=edge,
            waf=waf,
            waf_source=waf_source,
            next_expiry=datetime.fromisoformat(d["next_expiry"]) if d["next_expiry"] else None,
        )


class LastKnownGood:
    """The file in ``data_dir``; every method runs in the caller's (worker) thread."""

    def __init__(self, data_dir: Path, sealer: KeySealer) -> None:
        self.path = data_dir / FILE_NAME
        self._codec = _Codec(sealer)
        #: The parts last written, by zone: weak references, so that this memory never keeps a replaced
        #: snapshot's objects alive (they are freed a slice at a time by the snapshot source).
        self._saved_zones: dict[str, weakref.ref[ZoneParts]] = {}
        #: What the next :meth:`load` returns instead of reading the file (:meth:`hand_over`).
        self._handed: Saved | None = None

    def __repr__(self) -> str:
        return f"LastKnownGood(path={str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS zones (zone_id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        return conn

    def save(self, view: SavedView) -> int:
        """Write what changed since the last save (by identity of each zone's parts); returns zones written."""
        current = {p.zone_id: p for p in view.parts}
        changed = [p for z, p in current.items() if (ref := self._saved_zones.get(z)) is None or ref() is not p]
        removed = [z for z in self._saved_zones if z not in current]
        meta = {
            "format": str(_FORMAT),
            "generation": str(view.generation),
            "saved_at": str(view.confirmed_at),
            "pki": json.dumps(self._codec.pki(view.pki)),
            "pki_expiry": view.pki_expiry.isoformat() if view.pki_expiry else "",
        }
        rows = []
        for n, part in enumerate(changed):
            rows.append((part.zone_id, self._codec.zone(part)))
            if n % 200 == 199:  # ~10k routes' worth: the save runs beside the edge's event loop
                yield_interpreter()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            if not self._saved_zones:
                conn.execute("DELETE FROM zones")  # first save of this process: the file may hold zones since deleted
            for start in range(0, len(rows), 500):  # slices: each executemany holds the interpreter throughout
                conn.executemany("INSERT OR REPLACE INTO zones VALUES (?, ?)", rows[start : start + 500])
            conn.executemany("DELETE FROM zones WHERE zone_id = ?", [(z,) for z in removed])
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(meta.items()))
            conn.execute("COMMIT")
        finally:
            conn.close()
        self._saved_zones = {z: weakref.ref(p) for z, p in current.items()}
        return len(rows)

    def hand_over(self, saved: Saved | None) -> None:
        """Make the next :meth:`load` return ``saved`` (or read the file again: None).

        A node that started serving from this file before it opened the store (``server/disk_start.py``)
        hands what it serves to the store's snapshot source, which loads the copy when the store is
        unreachable: the same objects, not a second load of 100k routes.
        """
        self._handed = saved

    def load(self) -> Saved | None:
        """The saved snapshot's assembly, or None when there is no usable file."""
        handed, self._handed = self._handed, None
        if handed is not None:
            return handed
        if not self.path.exists():
            return None
        conn = self._connect()
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") not in _READS:
                return None
            pki = self._codec.load_pki(json.loads(meta["pki"]))
            parts = [self._codec.load_zone(z, body, pki) for z, body in conn.execute("SELECT zone_id, body FROM zones")]
        finally:
            conn.close()
        assembly = SnapshotAssembly(pki, parts)
        assembly.pki_expiry = datetime.fromisoformat(meta["pki_expiry"]) if meta.get("pki_expiry") else None
        return Saved(int(meta["generation"]), float(meta["saved_at"]), assembly)


def age(saved: Saved) -> float:
    return max(0.0, time.time() - saved.saved_at)
