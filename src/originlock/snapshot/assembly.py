"""Assembling a :class:`Snapshot` from per-zone parts, so that a change rebuilds only the zones it touched.

Theory of operation. The store compiles each zone on its own into :class:`ZoneParts` (its routes, its
DNS-only names, its uploaded edge certificates, its WAF rulesets, and the next instant at which one of
its client certificates expires). A :class:`SnapshotAssembly` keeps the parts of every zone and the
merged tables the edge looks up (hostname -> route), and :meth:`SnapshotAssembly.replace` swaps the
parts of a few zones, updating only the entries of their hostnames. :meth:`SnapshotAssembly.snapshot`
then freezes the current state into a new immutable :class:`Snapshot`, which the edge swaps in
atomically. The route table is a shared base plus an overlay of the names changed since
(snapshot/routes.py): freezing it copies the overlay, not the 100k-entry base, so a change costs the
edge's process O(change) and never holds the interpreter lock for a whole-table copy.

A hostname proxied by two zones (possible across accounts) goes to the record created first, as the
whole-store compile did.

Pure: no I/O, no clock; times are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from originlock.snapshot.model import DeploymentPki, EdgeCert, Route, Snapshot, ZonePhases
from originlock.snapshot.routes import RouteLayers

__all__ = ["SnapshotAssembly", "ZoneParts"]


@dataclass(frozen=True)
class ZoneParts:
    """What one zone contributes to the snapshot."""

    zone_id: str
    #: Proxied hostname -> route.
    routes: Mapping[str, Route] = field(default_factory=dict)
    #: Proxied hostname -> creation time of its record: settles a name two zones both claim.
    created: Mapping[str, str] = field(default_factory=dict)
    #: Names of DNS-only records.
    dns_only: frozenset[str] = frozenset()
    #: Uploaded edge certificates with their order keys (priority, upload time).
    edge_certs: tuple[tuple[int, str, EdgeCert], ...] = ()
    waf: ZonePhases | None = None
    #: The stored rulesets ``waf`` was compiled from, ``(ruleset id, phase, rules JSON)``: compiled rules are
    #: code, so the last-known-good copy on disk keeps these and compiles them again when loaded.
    waf_source: tuple[tuple[str, str, str], ...] = ()
    #: The next instant a client certificate of this zone expires (its routes must then be rebuilt).
    next_expiry: datetime | None = None
    #: Fingerprints of the client certificates the routes present (derived).
    fingerprints: frozenset[str] = field(init=False, repr=False, compare=False)
    #: Some route has ``tls_1_3`` off (derived).
    tls12_only: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        found = set()
        tls12_only = False
        for route in self.routes.values():
            if route.client_cert is not None:
                found.add(route.client_cert.fingerprint)
            if not route.tls_1_3:
                tls12_only = True
        object.__setattr__(self, "fingerprints", frozenset(found))
        object.__setattr__(self, "tls12_only", tls12_only)


class SnapshotAssembly:
    """Every zone's parts and the merged tables; see the module docstring."""

    def __init__(self, pki: DeploymentPki, zones: Iterable[ZoneParts] = ()) -> None:
        self.pki = pki
        #: The instant the global client certificate expires (everything is rebuilt then).
        self.pki_expiry: datetime | None = None
        self._zones: dict[str, ZoneParts] = {}
        #: Hostname -> the route served; the zone that owns it is the route's ``zone_id``.
        self._routes: RouteLayers[Route] = RouteLayers()
        #: The rare names more than one zone proxies -> those zones (the winner's route is in ``_routes``).
        self._contested: dict[str, set[str]] = {}
        #: DNS-only name -> how many zones have one, and the snapshot's set (None: to recompute).
        self._dns_claims: dict[str, int] = {}
        self._dns_only: frozenset[str] | None = frozenset()
        #: Client certificate fingerprint -> how many zones present it, and the snapshot's set.
        self._fingerprint_zones: dict[str, int] = {}
        self._fingerprints: frozenset[str] | None = frozenset()
        #: The global leaf's fingerprint included in ``_fingerprints``.
        self._fingerprints_leaf: str | None = None
        self._edge_certs: tuple[EdgeCert, ...] | None = ()
        self._waf: dict[str, ZonePhases] = {}
        #: Zones with a route that has ``tls_1_3`` off.
        self._tls12_zones: set[str] = set()
        #: The earliest zone ``next_expiry`` (None: to recompute), a scan of every zone otherwise.
        self._next_expiry: datetime | None = None
        self._next_expiry_known = True
        self._load(zones)

    def _load(self, zones: Iterable[ZoneParts]) -> None:
        """The first fill: names with one claimant (nearly all) are merged a zone at a time, in C."""
        routes, contested = self._routes, self._contested
        for part in zones:
            zone_id = part.zone_id
            if zone_id in self._zones:
                self._swap(zone_id, part)
                continue
            self._zones[zone_id] = part
            if part.routes:
                for name in routes.keys_in(part.routes):
                    holder = routes.get(name)
                    assert holder is not None
                    contested.setdefault(name, {holder.zone_id}).add(zone_id)
                routes.update(part.routes)
            for name in part.dns_only:
                self._dns_claims[name] = self._dns_claims.get(name, 0) + 1
            for fingerprint in part.fingerprints:
                self._fingerprint_zones[fingerprint] = self._fingerprint_zones.get(fingerprint, 0) + 1
            if part.waf:
                self._waf[zone_id] = part.waf
            if part.tls12_only:
                self._tls12_zones.add(zone_id)
            if part.edge_certs:
                self._edge_certs = None
        for name in list(contested):
            self._settle(name)
        self._dns_only = self._fingerprints = None
        self._next_expiry_known = False

    def __repr__(self) -> str:
        return f"SnapshotAssembly(zones={len(self._zones)}, routes={len(self._routes)})"

    @property
    def zone_count(self) -> int:
        return len(self._zones)

    @property
    def route_count(self) -> int:
        return len(self._routes)

    def parts(self) -> list[ZoneParts]:
        """Every zone's parts (the last-known-good writer saves them)."""
        return list(self._zones.values())

    def zone_parts(self, zone_id: str) -> ZoneParts | None:
        return self._zones.get(zone_id)

    def replace(self, parts: Iterable[ZoneParts], removed: Iterable[str]) -> None:
        """Install new parts for some zones and drop others (deleted zones)."""
        for zone_id in removed:
            self._swap(zone_id, None)
        for part in parts:
            self._swap(part.zone_id, part)

    def _swap(self, zone_id: str, new: ZoneParts | None) -> None:
        old = self._zones.pop(zone_id, None)
        if new is not None:
            self._zones[zone_id] = new
        old_routes: Mapping[str, Route] = old.routes if old else {}
        new_routes: Mapping[str, Route] = new.routes if new else {}
        routes, contested = self._routes, self._contested
        unsettled = []
        for name in old_routes.keys() - new_routes.keys():
            if name in contested:
                unsettled.append(name)
            elif (route := routes.get(name)) is not None and route.zone_id == zone_id:
                routes.delete(name)
        for name, route in new_routes.items():
            current = routes.get(name)
            if current is None or (current.zone_id == zone_id and name not in contested):
                routes.set(name, route)
            else:
                contested.setdefault(name, {current.zone_id}).add(zone_id)
                unsettled.append(name)
        for name in unsettled:
            self._settle(name)
        old_dns = old.dns_only if old else frozenset()
        new_dns = new.dns_only if new else frozenset()
        if old_dns != new_dns:
            _count(self._dns_claims, old_dns, new_dns)
            self._dns_only = None
        elif self._dns_claims and old_routes.keys() != new_routes.keys():
            self._dns_only = None  # a name may have gained or lost a route that hides its DNS-only record
        old_fps = old.fingerprints if old else frozenset()
        new_fps = new.fingerprints if new else frozenset()
        if old_fps != new_fps:
            _count(self._fingerprint_zones, old_fps, new_fps)
            self._fingerprints = None
        if (old and old.edge_certs) or (new and new.edge_certs):
            self._edge_certs = None  # re-sorted at the next snapshot
        self._waf.pop(zone_id, None)
        if new is not None and new.waf:
            self._waf[zone_id] = new.waf
        self._tls12_zones.discard(zone_id)
        if new is not None and new.tls12_only:
            self._tls12_zones.add(zone_id)
        old_expiry = old.next_expiry if old else None
        new_expiry = new.next_expiry if new else None
        if old_expiry != new_expiry and self._next_expiry_known:
            if old_expiry is not None and old_expiry == self._next_expiry:
                self._next_expiry_known = False
            elif new_expiry is not None and (self._next_expiry is None or new_expiry < self._next_expiry):
                self._next_expiry = new_expiry

    def _settle(self, name: str) -> None:
        """Give a name several zones claimed to the one whose record is the oldest (or drop it)."""
        zones = self._zones
        claimants = [z for z in self._contested.pop(name, ()) if z in zones and name in zones[z].routes]
        if not claimants:
            self._routes.delete(name)
            return
        first = min(claimants, key=lambda z: (zones[z].created.get(name, ""), z))
        self._routes.set(name, zones[first].routes[name])
        if len(claimants) > 1:
            self._contested[name] = set(claimants)

    @property
    def overlay_size(self) -> int:
        """Names changed since the route table's base was made (folded into a new base past ``FOLD_AT``)."""
        return self._routes.overlay_size

    def snapshot(self, generation: int, pause: Callable[[], None] = lambda: None) -> Snapshot:
        """Freeze the current state; ``pause()`` is called between the slices of a fold of the route table
        (a worker thread lets the event loop run there)."""
        if self._edge_certs is None:
            ordered = sorted(
                (entry for part in self._zones.values() for entry in part.edge_certs),
                key=lambda e: (e[0], e[1]),
                reverse=True,
            )
            self._edge_certs = tuple(cert for _, _, cert in ordered)
        routes = self._routes
        if self._dns_only is None:
            self._dns_only = frozenset(name for name in self._dns_claims if name not in routes)
        leaf = self.pki.global_client.fingerprint if self.pki.global_client is not None else None
        if self._fingerprints is None or leaf != self._fingerprints_leaf:
            # With the global leaf's: the snapshot then takes this set as it is, and an unchanged set stays
            # the same object from one snapshot to the next.
            found = set(self._fingerprint_zones)
            if leaf is not None:
                found.add(leaf)
            self._fingerprints, self._fingerprints_leaf = frozenset(found), leaf
        return Snapshot(
            generation=generation,
            routes=routes.table(pause),
            pki=self.pki,
            dns_only=self._dns_only,
            edge_certs=self._edge_certs,
            waf=MappingProxyType(dict(self._waf)),
            known_fingerprints=self._fingerprints,
            known_tls12_only=bool(self._tls12_zones),
        )

    def dismantle(self, slice_size: int, pause: Callable[[], None]) -> None:
        """Drop everything this assembly holds, ``slice_size`` entries at a time with ``pause()`` between
        slices: a replaced 100k-hostname assembly freed by one reference drop held the interpreter for
        70-85 ms. Snapshots taken from it keep their own references and stay intact."""
        self._routes.clear_slices(slice_size, pause)
        for table in (self._zones, self._contested, self._dns_claims, self._fingerprint_zones):
            while table:
                for _ in range(min(slice_size, len(table))):
                    table.popitem()
                pause()
        self._waf.clear()
        self._tls12_zones.clear()
        self._edge_certs = self._dns_only = self._fingerprints = None

    def next_expiry(self) -> datetime | None:
        """The earliest instant at which some route's client certificate choice changes."""
        if not self._next_expiry_known:
            self._next_expiry = min((p.next_expiry for p in self._zones.values() if p.next_expiry), default=None)
            self._next_expiry_known = True
        instants = [t for t in (self._next_expiry, self.pki_expiry) if t is not None]
        return min(instants, default=None)

    def zones_expiring(self, now: datetime) -> set[str]:
        """Zones with a client certificate expired at or before ``now`` since they were compiled."""
        first = self.next_expiry()
        if first is None or first > now:
            return set()
        return {z for z, p in self._zones.items() if p.next_expiry is not None and p.next_expiry <= now}


def _count(counts: dict[str, int], removed: Iterable[str], added: Iterable[str]) -> None:
    for key in removed:
        left = counts.get(key, 0) - 1
        if left > 0:
            counts[key] = left
        else:
            counts.pop(key, None)
    for key in added:
        counts[key] = counts.get(key, 0) + 1
