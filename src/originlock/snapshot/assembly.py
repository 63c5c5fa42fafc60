"""Assembling a :class:`Snapshot` from per-zone parts, so that a change rebuilds only the zones it touched.

Theory of operation. The store compiles each zone on its own into :class:`ZoneParts` (its routes, its
DNS-only names, its uploaded edge certificates, its WAF rulesets, and the next instant at which one of
its client certificates expires). A :class:`SnapshotAssembly` keeps the parts of every zone and the
merged tables the edge looks up (hostname -> route), and :meth:`SnapshotAssembly.replace` swaps the
parts of a few zones, updating only the entries of their hostnames. :meth:`SnapshotAssembly.snapshot`
then freezes the current state into a new immutable :class:`Snapshot` (a copy of the route table,
milliseconds at 100k hostnames), which the edge swaps in atomically.

A hostname proxied by two zones (possible across accounts) goes to the record created first, as the
whole-store compile did.

Pure: no I/O, no clock; times are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from originlock.snapshot.model import DeploymentPki, EdgeCert, Route, Snapshot, ZonePhases

__all__ = ["SnapshotAssembly", "ZoneParts"]


@dataclass(frozen=True)
class ZoneParts:
    """What one zone contributes to the snapshot."""

    zone_id: str
    #: Proxied hostname -> (record creation time, route): the time settles a name two zones both claim.
    routes: Mapping[str, tuple[str, Route]] = field(default_factory=dict)
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


class SnapshotAssembly:
    """Every zone's parts and the merged tables; see the module docstring."""

    def __init__(self, pki: DeploymentPki, zones: Iterable[ZoneParts] = ()) -> None:
        self.pki = pki
        #: The instant the global client certificate expires (everything is rebuilt then).
        self.pki_expiry: datetime | None = None
        self._zones: dict[str, ZoneParts] = {}
        self._routes: dict[str, Route] = {}
        self._claims: dict[str, set[str]] = {}
        self._dns_claims: dict[str, set[str]] = {}
        self._edge_certs: tuple[EdgeCert, ...] | None = ()
        self._waf: dict[str, ZonePhases] = {}
        self._load(zones)

    def _load(self, zones: Iterable[ZoneParts]) -> None:
        """The first fill: most names have one claimant, and need none of :meth:`_swap`'s bookkeeping."""
        routes, claims, contested = self._routes, self._claims, []
        for part in zones:
            zone_id = part.zone_id
            self._zones[zone_id] = part
            for name, (_, route) in part.routes.items():
                claimants = claims.get(name)
                if claimants is None:
                    claims[name] = {zone_id}
                    routes[name] = route
                else:
                    claimants.add(zone_id)
                    contested.append(name)
            for name in part.dns_only:
                self._dns_claims.setdefault(name, set()).add(zone_id)
            if part.waf:
                self._waf[zone_id] = part.waf
            if part.edge_certs:
                self._edge_certs = None
        for name in contested:
            self._settle(name)

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
        old_routes = old.routes if old else {}
        new_routes = new.routes if new else {}
        for name in old_routes:
            self._claims[name].discard(zone_id)
        for name in new_routes:
            self._claims.setdefault(name, set()).add(zone_id)
        for name in {*old_routes, *new_routes}:
            self._settle(name)
        for name in old.dns_only if old else ():
            self._dns_claims[name].discard(zone_id)
            if not self._dns_claims[name]:
                del self._dns_claims[name]
        for name in new.dns_only if new else ():
            self._dns_claims.setdefault(name, set()).add(zone_id)
        if (old and old.edge_certs) or (new and new.edge_certs):
            self._edge_certs = None  # re-sorted at the next snapshot
        self._waf.pop(zone_id, None)
        if new is not None and new.waf:
            self._waf[zone_id] = new.waf

    def _settle(self, name: str) -> None:
        claimants = self._claims.get(name)
        if not claimants:
            self._claims.pop(name, None)
            self._routes.pop(name, None)
            return
        first = min(claimants, key=lambda z: self._zones[z].routes[name][0])
        self._routes[name] = self._zones[first].routes[name][1]

    def snapshot(self, generation: int) -> Snapshot:
        if self._edge_certs is None:
            ordered = sorted(
                (entry for part in self._zones.values() for entry in part.edge_certs),
                key=lambda e: (e[0], e[1]),
                reverse=True,
            )
            self._edge_certs = tuple(cert for _, _, cert in ordered)
        routes = self._routes
        return Snapshot(
            generation=generation,
            routes=routes,
            pki=self.pki,
            dns_only=frozenset(name for name in self._dns_claims if name not in routes),
            edge_certs=self._edge_certs,
            waf=MappingProxyType(dict(self._waf)),
        )

    def next_expiry(self) -> datetime | None:
        """The earliest instant at which some route's client certificate choice changes."""
        instants = [p.next_expiry for p in self._zones.values() if p.next_expiry is not None]
        if self.pki_expiry is not None:
            instants.append(self.pki_expiry)
        return min(instants, default=None)

    def zones_expiring(self, now: datetime) -> set[str]:
        """Zones with a client certificate expired at or before ``now`` since they were compiled."""
        return {z for z, p in self._zones.items() if p.next_expiry is not None and p.next_expiry <= now}
