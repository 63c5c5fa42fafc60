"""edge_identity: what the edge presents (and which CAs the origin should trust), without touching a key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from originlock.server.bootstrap import bootstrap
from originlock.store import aop, settings, zones
from originlock.store.identity import edge_identity
from originlock.store.pki import public_pem
from originlock.testing.upload_pki import UploadPki, leaf_pems


def test_identity_follows_precedence(store_url: str, tmp_path: Path) -> None:
    d = bootstrap(tmp_path / "data", store_url)
    store, now = d.store, datetime.now(UTC)
    pki = UploadPki.create("identity CA")
    with store.write() as conn:
        zone = zones.create_zone(conn, name="id.test", account_id=d.account_id).id
        assert edge_identity(conn, zone, "app.id.test", now).source == "none"
        settings.set_setting(conn, zone, "tls_client_auth", "on")
        found = edge_identity(conn, zone, "app.id.test", now)
        assert (found.source, found.ca_bundle) == ("global", public_pem(conn, "origin-pull"))
        # A zone certificate uploaded with its CA: the bundle names that CA.
        leaf_cert, leaf_key = leaf_pems(pki.client("id.test"))
        zc = aop.upload_cert(conn, store.sealer, zone, "zone", leaf_cert + pki.ca.cert_pem, leaf_key, now)
        settings.set_aop_zone_enabled(conn, zone, True)
        found = edge_identity(conn, zone, None, now)
        assert (found.source, found.certificate_id, found.ca_bundle) == ("zone", zc.id, pki.ca.cert_pem)
        assert "PRIVATE KEY" not in repr(found)
        hc = aop.upload_cert(conn, store.sealer, zone, "hostname", *leaf_pems(pki.client("app.id.test")), now)
        aop.put_associations(conn, zone, [aop.AssociationInput("app.id.test", hc.id, True)])
        found = edge_identity(conn, zone, "app.id.test", now)
        assert (found.source, found.certificate_id, found.ca_bundle) == ("hostname", hc.id, None)  # no CA uploaded
        aop.put_associations(conn, zone, [aop.AssociationInput("app.id.test", hc.id, False)])
        assert edge_identity(conn, zone, "app.id.test", now).source == "none"
        assert edge_identity(conn, zone, "www.id.test", now).source == "zone"
    store.close()
