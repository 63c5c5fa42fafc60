"""Migration 9: ``aop_certs.not_before`` stored beside ``expires_on``, filled for the certificates already
there, written by every upload, and read by the snapshot compile instead of a PEM parse per certificate."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text, update

from originlock.store import aop, compile, dns, schema, settings, zones
from originlock.store.db import Store
from originlock.store.migrate import LATEST, backfill_not_before, current_version
from originlock.store.sealing import KeySealer
from originlock.store.stamps import now_iso, to_iso
from originlock.testing.upload_pki import UploadPki, leaf_pems

SEALER = KeySealer(secrets.token_bytes(32))


def _zone_with_cert(store: Store, pki: UploadPki, name: str) -> tuple[str, str, datetime]:
    leaf = pki.client(name)
    with store.write() as conn:
        account = zones.create_account(conn, "acct")
        zone = zones.create_zone(conn, name=f"{name}.test", account_id=account).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
        settings.set_setting(conn, zone, "ssl", "origin_pull")
        settings.set_aop_zone_enabled(conn, zone, True)
        cert = aop.upload_cert(conn, SEALER, zone, "zone", *leaf_pems(leaf), datetime.now(UTC))
    return zone, cert.id, leaf.cert.not_valid_before_utc


def _stored(store: Store, cert_id: str) -> str | None:
    with store.read() as conn:
        value: str | None = conn.execute(
            select(schema.aop_certs.c.not_before).where(schema.aop_certs.c.id == cert_id)
        ).scalar_one()
    return value


def test_an_upload_stores_not_before_and_the_api_row_leaves_it_out(store_url: str, pki: UploadPki) -> None:
    store = Store(store_url, SEALER)
    try:
        zone, cert_id, not_before = _zone_with_cert(store, pki, "upload")
        assert _stored(store, cert_id) == to_iso(not_before)
        with store.read() as conn:
            row = aop.get_cert(conn, zone, "zone", cert_id)
        assert "not_before" not in row._fields  # the API's certificate document is unchanged
    finally:
        store.close()


def test_a_version_8_database_gets_the_column_filled_from_each_certificate(store_url: str, pki: UploadPki) -> None:
    store = Store(store_url, SEALER)
    try:
        zone, cert_id, not_before = _zone_with_cert(store, pki, "old")
        with store.write() as conn:  # back to what version 8 had: no column
            conn.execute(text("ALTER TABLE aop_certs DROP COLUMN not_before"))
            conn.execute(update(schema.meta).where(schema.meta.c.key == "schema_version").values(value="8"))
    finally:
        store.close()
    store = Store(store_url, SEALER)  # migrates
    try:
        with store.read() as conn:
            assert current_version(conn) == LATEST >= 9
        assert _stored(store, cert_id) == to_iso(not_before)
        with store.read() as conn:
            zone_certs, _ = compile.load_candidates(conn, SEALER)
        assert [(c.cert.id, c.cert.not_before) for c in zone_certs[zone]] == [(cert_id, not_before)]
        with store.write() as conn:
            assert backfill_not_before(conn) == 0  # nothing left to fill
    finally:
        store.close()


def test_the_compile_reads_the_column_and_parses_only_rows_an_older_node_wrote(
    store_url: str, pki: UploadPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(store_url, SEALER)
    try:
        zone, _, not_before = _zone_with_cert(store, pki, "mixed")
        # A certificate an older API node inserted after the migration: no not_before.
        older = pki.client("older")
        older_id = secrets.token_hex(16)
        certificate, key = leaf_pems(older)
        with store.write() as conn:
            conn.execute(
                insert(schema.aop_certs).values(
                    id=older_id,
                    zone_id=zone,
                    kind="hostname",
                    certificate=certificate,
                    chain_pem=certificate,
                    key_sealed=SEALER.seal(key.encode(), older_id),
                    issuer="older",
                    signature="ECDSAWithSHA256",
                    serial_number="1",
                    fingerprint=secrets.token_hex(32),
                    expires_on=to_iso(older.cert.not_valid_after_utc),
                    status="active",
                    uploaded_on=now_iso(),
                    updated_at=now_iso(),
                )
            )
        parsed: list[str] = []
        real = compile.load_pem_x509_certificate

        def counting(data: bytes) -> object:
            parsed.append(data.decode())
            return real(data)

        monkeypatch.setattr(compile, "load_pem_x509_certificate", counting)
        with store.read() as conn:
            zone_certs, hostname_certs = compile.load_candidates(conn, SEALER)
        assert [c.cert.not_before for c in zone_certs[zone]] == [not_before]
        assert hostname_certs[older_id].cert.not_before == older.cert.not_valid_before_utc
        assert parsed == [certificate]  # the older row's PEM only
        parsed.clear()
        with store.read() as conn:  # the snapshot compile's own reading, keys unsealed
            zone_certs, hostname_certs = compile._candidates(conn, SEALER, None)
        assert [c.cert.not_before for c in zone_certs[zone]] == [not_before]
        assert zone_certs[zone][0].cert.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        assert hostname_certs[older_id].cert.not_before == older.cert.not_valid_before_utc
        assert hostname_certs[older_id].cert.key_pem == key.encode()
        assert parsed == [certificate]
    finally:
        store.close()
