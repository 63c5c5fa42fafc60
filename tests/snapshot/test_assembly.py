"""SnapshotAssembly: per-zone parts merged into one snapshot, replaced zone by zone (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from originlock.snapshot.assembly import SnapshotAssembly, ZoneParts
from originlock.snapshot.model import DeploymentPki, Route, SslMode

PKI = DeploymentPki(edge_ca_cert_pem=b"ca", edge_ca_key_pem=b"key")
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _route(name: str, zone: str, origin: str = "192.0.2.1") -> Route:
    return Route(name, zone, f"{zone}.test", origin, "A", SslMode.FULL, False, "1.2", None)


def _zone(zone: str, names: dict[str, str], dns_only: frozenset[str] = frozenset(), **kw: object) -> ZoneParts:
    routes = {name: _route(name, zone) for name in names}
    return ZoneParts(zone, routes, names, dns_only, **kw)  # type: ignore[arg-type]


def test_a_name_two_zones_claim_goes_to_the_older_record_and_moves_when_it_goes() -> None:
    a = _zone("a", {"www.shared.test": "2024-01-02", "only-a.test": "2024-01-01"})
    b = _zone("b", {"www.shared.test": "2024-01-01"}, frozenset({"mail.b.test"}))
    for assembly in (SnapshotAssembly(PKI, [a, b]), SnapshotAssembly(PKI, [b, a])):
        snap = assembly.snapshot(7)
        assert snap.generation == 7 and snap.routes["www.shared.test"].zone_id == "b"
        assert set(snap.routes) == {"www.shared.test", "only-a.test"} and snap.dns_only == {"mail.b.test"}
        assembly.replace([], ["b"])
        snap2 = assembly.snapshot(8)
        assert snap2.routes["www.shared.test"].zone_id == "a" and snap2.dns_only == frozenset()
        assert snap.routes["www.shared.test"].zone_id == "b"  # an earlier snapshot is never changed
        assembly.replace([_zone("a", {"new.test": "2024-02-01"})], [])
        assert set(assembly.snapshot(9).routes) == {"new.test"}
        assert assembly.zone_count == 1 and assembly.route_count == 1


def test_next_expiry_and_expiring_zones() -> None:
    soon, later = T0 + timedelta(hours=1), T0 + timedelta(days=3)
    assembly = SnapshotAssembly(PKI, [_zone("a", {}, next_expiry=later), _zone("b", {}, next_expiry=soon)])
    assembly.pki_expiry = T0 + timedelta(days=30)
    assert assembly.next_expiry() == soon
    assert assembly.zones_expiring(T0) == set()
    assert assembly.zones_expiring(soon) == {"b"}
    assert assembly.zones_expiring(later) == {"a", "b"}
