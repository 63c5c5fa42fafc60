"""SnapshotAssembly: per-zone parts merged into one snapshot, replaced zone by zone (pure)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from originlock.edge.state import certificates_gone
from originlock.snapshot.assembly import SnapshotAssembly, ZoneParts
from originlock.snapshot.model import ClientCert, DeploymentPki, Route, Snapshot, SslMode

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


def _fp(fingerprint: str) -> ClientCert:
    return ClientCert(fingerprint, "zone", fingerprint, b"chain", b"key", T0 + timedelta(days=1))


def test_route_for_host_equals_the_constructed_route_and_the_template_needs_every_shared_field() -> None:
    cert = _fp("f1")
    shared = dict(
        zone_id="z",
        zone_name="z.test",
        ssl_mode=SslMode.ORIGIN_PULL,
        always_use_https=True,
        min_tls_version="1.2",
        client_cert=cert,
        client_cert_error=None,
        fips=True,
        websockets=False,
    )
    stamped = Route.for_host(Route.template(**shared), "www.z.test", "192.0.2.9", "A")
    built = Route(hostname="www.z.test", origin="192.0.2.9", record_type="A", **shared)  # type: ignore[arg-type]
    assert stamped == built and hash(stamped) == hash(built) and repr(stamped) == repr(built)
    # Defaults fill the fields left out; a shared field without a default must be given.
    assert Route.for_host(Route.template(**{**shared, "fips": False}), "a", "b", "A").websockets is False
    with pytest.raises(TypeError, match="zone_name"):
        Route.template(**{k: v for k, v in shared.items() if k != "zone_name"})


def _zone_with(zone: str, names: dict[str, str], certs: dict[str, str | None], **kw: object) -> ZoneParts:
    routes = {
        name: dataclasses.replace(_route(name, zone), client_cert=_fp(fp) if (fp := certs.get(name)) else None)
        for name in names
    }
    return ZoneParts(zone, routes, names, **kw)  # type: ignore[arg-type]


def test_contested_names_follow_the_oldest_record_through_replacements_and_snapshots_keep_fingerprints() -> None:
    a = _zone_with("a", {"shared.test": "2024-03", "a.test": "2024-01"}, {"shared.test": "fa", "a.test": "fa"})
    b = _zone_with("b", {"shared.test": "2024-02"}, {"shared.test": "fb"})
    c = _zone_with("c", {"shared.test": "2024-01"}, {})
    assembly = SnapshotAssembly(PKI, [a, b])
    assert assembly.snapshot(1).routes["shared.test"].zone_id == "b"
    assembly.replace([c], [])
    snap = assembly.snapshot(2)
    assert snap.routes["shared.test"].zone_id == "c"
    assert snap.client_fingerprints == {"fa", "fb"}  # b still claims the name: its certificate stays usable
    # The winner changes its own route: the new route is served, still contested by the others.
    c2 = _zone_with("c", {"shared.test": "2024-01"}, {"shared.test": "fc"})
    assembly.replace([c2], [])
    assert assembly.snapshot(3).routes["shared.test"].client_cert == _fp("fc")
    # The winner drops the name: the next oldest claimant gets it; then the last claimant's update applies.
    assembly.replace([_zone_with("c", {}, {})], [])
    assert assembly.snapshot(4).routes["shared.test"].zone_id == "b"
    assembly.replace([], ["b"])
    assert assembly.snapshot(5).routes["shared.test"].zone_id == "a"
    assembly.replace([_zone_with("a", {"shared.test": "2024-03"}, {"shared.test": "fa2"})], [])
    snap = assembly.snapshot(6)
    assert set(snap.routes) == {"shared.test"} and snap.routes["shared.test"].client_cert == _fp("fa2")
    # What the assembly keeps is what a snapshot collects from its routes.
    collected = Snapshot(generation=6, routes=snap.routes, pki=PKI)
    assert snap.client_fingerprints == collected.client_fingerprints == {"fa2"}


def test_the_edge_compares_certificate_sets_only_when_a_change_touched_them() -> None:
    a = _zone_with("a", {"a.test": "2024-01"}, {"a.test": "fa"})
    b = _zone_with("b", {"b.test": "2024-01"}, {"b.test": "fb"})
    assembly = SnapshotAssembly(PKI, [a, b])
    first = assembly.snapshot(1)
    # A change without certificates keeps the set object: the edge's swap is an identity check.
    assembly.replace([_zone_with("b", {"b.test": "2024-01", "b2.test": "2024-02"}, {"b.test": "fb"})], [])
    second = assembly.snapshot(2)
    assert second.client_fingerprints is first.client_fingerprints
    assert not certificates_gone(first, second)
    # A new certificate retires nothing; a certificate gone does.
    assembly.replace([_zone_with("c", {"c.test": "2024-01"}, {"c.test": "fc"})], [])
    third = assembly.snapshot(3)
    assert not certificates_gone(second, third)
    assembly.replace([], ["a"])
    assert certificates_gone(third, assembly.snapshot(4))


def test_dns_only_names_hidden_by_a_route_come_back_when_it_goes() -> None:
    a = _zone("a", {}, frozenset({"mail.test"}))
    assembly = SnapshotAssembly(PKI, [a])
    assert assembly.snapshot(1).dns_only == {"mail.test"}
    assembly.replace([_zone("b", {"mail.test": "2024-01-01"})], [])
    assert assembly.snapshot(2).dns_only == frozenset()
    assembly.replace([_zone("b", {})], [])
    assert assembly.snapshot(3).dns_only == {"mail.test"}
    assembly.replace([_zone("a", {})], [])
    assert assembly.snapshot(4).dns_only == frozenset()


def test_next_expiry_follows_replacements_of_the_earliest_zone() -> None:
    soon, later = T0 + timedelta(hours=1), T0 + timedelta(days=3)
    assembly = SnapshotAssembly(PKI, [_zone("a", {}, next_expiry=later), _zone("b", {}, next_expiry=soon)])
    assert assembly.next_expiry() == soon
    assembly.replace([_zone("b", {}, next_expiry=None)], [])
    assert assembly.next_expiry() == later and assembly.zones_expiring(later) == {"a"}
    assembly.replace([_zone("c", {}, next_expiry=soon)], [])
    assert assembly.next_expiry() == soon
    assembly.replace([], ["a", "c"])
    assert assembly.next_expiry() is None and assembly.zones_expiring(later) == set()


def test_dismantle_frees_a_slice_at_a_time_and_leaves_snapshots_intact() -> None:
    zones = [_zone(f"z{i}", {f"h{j}.z{i}.test": "2024-01-01" for j in range(3)}) for i in range(10)]
    assembly = SnapshotAssembly(PKI, zones)
    assembly.snapshot(1)  # dropped at once: nothing else holds the route table's base
    pauses: list[int] = []
    assembly.dismantle(4, lambda: pauses.append(assembly.zone_count + assembly.route_count))
    assert assembly.zone_count == assembly.route_count == 0 and assembly.parts() == []
    assert len(pauses) == 8 + 3 and pauses == sorted(pauses, reverse=True)  # 30 routes, then 10 zones, by 4
    # A snapshot still held (an old request's) shares the base: it is left whole, freed with the snapshot.
    assembly = SnapshotAssembly(PKI, zones)
    assembly.replace([_zone("z0", {"new.z0.test": "2024-01-02"})], [])
    snap = assembly.snapshot(2)
    pauses.clear()
    assembly.dismantle(4, lambda: pauses.append(assembly.zone_count))
    assert assembly.route_count == 0 and len(pauses) == 3
    assert len(snap.routes) == 28 and snap.route_for("h2.z9.test") == _route("h2.z9.test", "z9")
    assert snap.route_for("new.z0.test") is not None and snap.route_for("h0.z0.test") is None
