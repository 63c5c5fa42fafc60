"""The store compiled into a snapshot: routes, settings and the certificate each hostname gets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from originlock.server.bootstrap import bootstrap
from originlock.snapshot.model import SslMode
from originlock.store import aop, dns, settings, zones
from originlock.store.compile import compile_snapshot
from originlock.testing.upload_pki import UploadPki, leaf_pems
from originlock.tls.certs import load_private_key


def test_compile_routes_and_precedence(store_url: str, tmp_path: Path, pki: UploadPki) -> None:
    d = bootstrap(tmp_path / "data", store_url)
    store = d.store
    now = datetime.now(UTC)
    zleaf, hleaf = pki.client("zone"), pki.client("app")
    with store.write() as conn:
        zone = zones.create_zone(conn, name="example.test", account_id=d.account_id)
        for name in ("app", "www", "dnsonly"):
            dns.create_record(conn, zone.id, dns.RecordInput("A", name, "127.0.0.1", proxied=name != "dnsonly"))
        dns.create_record(conn, zone.id, dns.RecordInput("CNAME", "*", "origin.elsewhere.test", proxied=True))
        settings.set_setting(conn, zone.id, "ssl", "strict")
        settings.set_setting(conn, zone.id, "tls_client_auth", "on")
        settings.set_aop_zone_enabled(conn, zone.id, True)
        zc = aop.upload_cert(conn, store.sealer, zone.id, "zone", *leaf_pems(zleaf), now)
        hc = aop.upload_cert(conn, store.sealer, zone.id, "hostname", *leaf_pems(hleaf), now)
        aop.put_associations(conn, zone.id, [aop.AssociationInput("app.example.test", hc.id, True)])
    before = store.generation()
    snap = compile_snapshot(store, now)
    assert snap.generation == before
    assert set(snap.routes) == {"app.example.test", "www.example.test", "*.example.test"}
    app, www = snap.routes["app.example.test"], snap.routes["www.example.test"]
    assert app.ssl_mode is SslMode.STRICT
    assert app.client_cert is not None and app.client_cert.id == hc.id and app.client_cert.source == "hostname"
    assert www.client_cert is not None and www.client_cert.id == zc.id
    # The key came out of its seal intact and matches the leaf.
    assert load_private_key(app.client_cert.key_pem).public_key() == hleaf.key.public_key()
    assert snap.route_for("deep.x.example.test") == snap.routes["*.example.test"]
    assert snap.route_for("WWW.example.test.") == www
    assert snap.route_for("dnsonly.example.test") is None
    assert snap.pki.global_client is not None and snap.pki.global_client.source == "global"

    with store.write() as conn:
        settings.set_aop_zone_enabled(conn, zone.id, False)
    assert store.generation() > before
    www2 = compile_snapshot(store, now).routes["www.example.test"]
    assert www2.client_cert is not None and www2.client_cert.source == "global"
    store.close()
