"""The route table's shared base + overlay (snapshot/routes.py): equal to a table rebuilt from scratch."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime
from typing import Any

from originlock.snapshot.assembly import SnapshotAssembly, ZoneParts
from originlock.snapshot.model import ClientCert, DeploymentPki, Route, Snapshot, SslMode
from originlock.snapshot.routes import FOLD_AT, RouteLayers, RouteTable

PKI = DeploymentPki(edge_ca_cert_pem=b"ca", edge_ca_key_pem=b"key")


def _layers(initial: dict[str, Any]) -> RouteLayers:
    layers = RouteLayers()
    layers.update(initial)
    return layers


def _same(table: RouteTable, model: dict[str, Any], probes: list[str]) -> None:
    assert dict(table.items()) == model and len(table) == len(model) and set(table) == set(model)
    for name in probes:
        assert table.get(name) == model.get(name) and (name in table) == (name in model)


def test_lookups_through_base_and_overlay_equal_a_rebuilt_table_and_earlier_tables_never_change() -> None:
    rng = random.Random(15)
    model = {f"h{i}": f"v{i}" for i in range(2000)}
    layers = _layers(model)
    first = layers.table()
    frozen = dict(model)
    probes = [f"h{i}" for i in range(0, 2600, 7)]
    for step in range(600):
        name = f"h{rng.randrange(2600)}"
        if rng.random() < 0.3:
            layers.delete(name)
            model.pop(name, None)
        else:
            layers.set(name, f"v{step}")
            model[name] = f"v{step}"
        assert len(layers) == len(model)
        if step % 50 == 0:
            _same(layers.table(), model, probes)
    table = layers.table()
    _same(table, model, probes)
    assert 0 < len(table.overlay) <= FOLD_AT and table.base is first.base  # still sharing the base
    _same(first, frozen, probes)  # what the first table showed is untouched by every later change


def test_a_deleted_name_reads_as_absent_and_can_come_back() -> None:
    layers = _layers({"a": 1, "b": 2})
    before = layers.table()
    layers.delete("a")
    layers.delete("zz")  # absent: nothing to do
    gone = layers.table()
    assert "a" not in gone and gone.get("a") is None and len(gone) == 1 and list(gone) == ["b"]
    assert gone.overlay == {"a": None} and before["a"] == 1
    layers.set("a", 3)
    layers.set("new", 4)
    layers.delete("new")  # only ever in the overlay: dropped from it, no tombstone
    back = layers.table()
    assert back["a"] == 3 and len(back) == 2 and back.overlay == {"a": 3}
    try:
        back["new"]
    except KeyError:
        pass
    else:
        raise AssertionError("a deleted name must raise KeyError")


def test_the_overlay_folds_into_a_new_base_past_its_limit_in_slices() -> None:
    model = {f"h{i}": i for i in range(12000)}
    layers = _layers(model)
    old = layers.table()
    for i in range(FOLD_AT + 1):
        layers.set(f"h{i}", -i)
        model[f"h{i}"] = -i
    layers.delete("h11999")
    del model["h11999"]
    pauses: list[int] = []
    folded = layers.table(lambda: pauses.append(1))
    assert folded.overlay == {} and folded.base is not old.base and dict(folded) == model
    assert len(pauses) == 3  # 12000 entries copied 5000 at a time, the event loop let in between
    assert old["h0"] == 0 and len(old) == 12000  # the old base was copied, never changed
    layers.set("after", 1)  # the new base is shared again: the next change goes to a new overlay
    assert layers.table().overlay == {"after": 1} and "after" not in folded


def _route(name: str, zone: str, origin: str) -> Route:
    return Route(name, zone, f"{zone}.test", origin, "A", SslMode.FULL, False, "1.2", None)


def _zone(zone: str, hosts: range, origin: str, *, tls_1_3: bool = True) -> ZoneParts:
    routes = {f"h{i}.{zone}.test": _route(f"h{i}.{zone}.test", zone, origin) for i in hosts}
    if not tls_1_3:
        routes = {n: dataclasses.replace(r, tls_1_3=False) for n, r in routes.items()}
    return ZoneParts(zone, routes, dict.fromkeys(routes, "2024-01-01"))


def test_an_assembly_changed_zone_by_zone_serves_what_a_rebuilt_one_does() -> None:
    rng = random.Random(8)
    zones = {f"z{i}": _zone(f"z{i}", range(20), "192.0.2.1") for i in range(300)}
    assembly = SnapshotAssembly(PKI, zones.values())
    assembly.snapshot(1)
    for generation in range(2, 400):
        zone = f"z{rng.randrange(320)}"
        if rng.random() < 0.2:
            zones.pop(zone, None)
            assembly.replace([], [zone])
        else:
            start = rng.randrange(10)
            zones[zone] = _zone(zone, range(start, start + rng.randrange(1, 25)), f"192.0.2.{generation % 250}")
            assembly.replace([zones[zone]], [])
        snap = assembly.snapshot(generation)
    rebuilt = SnapshotAssembly(PKI, zones.values()).snapshot(399)
    assert dict(snap.routes) == dict(rebuilt.routes) and len(snap.routes) == len(rebuilt.routes)
    assert snap.routes == rebuilt.routes and assembly.route_count == len(rebuilt.routes)
    for name in [f"h{i}.z{z}.test" for z in range(0, 320, 3) for i in range(0, 40, 3)]:
        assert snap.route_for(name) == rebuilt.route_for(name)
    assert assembly.overlay_size > 0  # the changes above went through the overlay


def test_the_snapshot_knows_whether_some_route_caps_tls_without_walking_them() -> None:
    assembly = SnapshotAssembly(PKI, [_zone("a", range(3), "192.0.2.1"), _zone("b", range(2), "192.0.2.1")])
    assert assembly.snapshot(1).any_tls12_only is False
    assembly.replace([_zone("b", range(2), "192.0.2.1", tls_1_3=False)], [])
    capped = assembly.snapshot(2)
    assert capped.any_tls12_only is True
    assert Snapshot(2, dict(capped.routes), PKI).any_tls12_only is True  # derived when not given
    assembly.replace([], ["b"])
    assert assembly.snapshot(3).any_tls12_only is False


def test_the_fingerprint_set_is_shared_while_unchanged_and_follows_the_global_leaf() -> None:
    leaf = ClientCert("global", "global", "g" * 64, b"chain", b"key", datetime(2030, 1, 1, tzinfo=UTC))
    assembly = SnapshotAssembly(dataclasses.replace(PKI, global_client=leaf), [_zone("a", range(2), "192.0.2.1")])
    first = assembly.snapshot(1)
    assembly.replace([_zone("a", range(3), "192.0.2.2")], [])
    second = assembly.snapshot(2)
    assert first.client_fingerprints == {"g" * 64} and second.client_fingerprints is first.client_fingerprints
    assembly.pki = PKI  # the global leaf went away: its connections must be retired
    assert assembly.snapshot(3).client_fingerprints == frozenset()
