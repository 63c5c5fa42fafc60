"""Incremental snapshots (issue 15): what a write touched is what gets recompiled, and the result is the
snapshot a whole rebuild would give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from originlock.server.bootstrap import bootstrap
from originlock.snapshot.model import Snapshot
from originlock.store import aop, custom_certs, dns, settings, tokens, zones
from originlock.store.changes import Change, read_since
from originlock.store.compile import compile_assembly, compile_snapshot, refresh_assembly
from originlock.testing.upload_pki import UploadPki, leaf_pems


def _same(a: Snapshot, b: Snapshot) -> None:
    assert dict(a.routes) == dict(b.routes)
    assert a.dns_only == b.dns_only
    assert [c.id for c in a.edge_certs] == [c.id for c in b.edge_certs]
    assert set(a.waf) == set(b.waf)


def test_each_write_names_its_zones_and_the_refresh_matches_a_full_compile(
    store_url: str, tmp_path: Path, pki: UploadPki
) -> None:
    d = bootstrap(tmp_path / "data", store_url)
    store = d.store
    seen: list[Change] = []
    store.committed_hooks.append(seen.append)
    now = datetime.now(UTC)
    with store.write() as conn:
        a = zones.create_zone(conn, name="a.test", account_id=d.account_id).id
        b = zones.create_zone(conn, name="b.test", account_id=d.account_id).id
        for zone in (a, b):
            for name in ("www", "api", "dnsonly"):
                dns.create_record(conn, zone, dns.RecordInput("A", name, "127.0.0.1", proxied=name != "dnsonly"))
    assert seen[-1].zones == {a, b} and not seen[-1].everything
    generation, assembly = compile_assembly(store, now)

    def change(expected: set[str]) -> None:
        last = seen[-1]
        assert last.zones == expected and not last.everything, last
        refresh_assembly(store, assembly, last.zones, now)
        _same(assembly.snapshot(last.generation), compile_snapshot(store, now))

    with store.write() as conn:
        settings.set_setting(conn, a, "always_use_https", "on")
    change({a})
    assert assembly.snapshot(0).routes["www.a.test"].always_use_https
    with store.write() as conn:
        record = dns.create_record(conn, b, dns.RecordInput("A", "new", "127.0.0.2", proxied=True))
    change({b})
    with store.write() as conn:
        dns.delete_record(conn, b, record.id)
    change({b})
    leaf = pki.client("zone-a")
    with store.write() as conn:
        settings.set_setting(conn, a, "ssl", "strict")
        settings.set_aop_zone_enabled(conn, a, True)
        aop.upload_cert(conn, store.sealer, a, "zone", *leaf_pems(leaf), now)
    change({a})
    route = assembly.snapshot(0).routes["api.a.test"]
    assert route.client_cert is not None and route.client_cert.source == "zone"
    assert assembly.next_expiry() is not None and assembly.next_expiry() <= now + timedelta(days=366)
    edge = pki.server("www.b.test", sans=("www.b.test",))
    with store.write() as conn:
        custom_certs.create(conn, store.sealer, b, edge.cert_pem, edge.key_pem, "ubiquitous", now)
    change({b})
    assert [c.zone_id for c in assembly.snapshot(0).edge_certs] == [b]
    with store.write() as conn:
        zones.delete_zone(conn, a)
    change({a})
    assert "www.a.test" not in assembly.snapshot(0).routes and "www.b.test" in assembly.snapshot(0).routes

    # Writes no snapshot reads from name no zone and do not ask for a rebuild.
    with store.write() as conn:
        tokens.create_token(conn, "ci", ["*"], None)
    assert not seen[-1].touches_snapshot
    # The log tells a node that missed notifications the same story, in order.
    with store.read() as conn:
        current, logged = read_since(conn, generation)
    assert logged is not None and [c.generation for c in logged] == list(range(generation + 1, current + 1))
    assert logged[-1] == seen[-1] and logged[0].zones == {a}
    store.close()
