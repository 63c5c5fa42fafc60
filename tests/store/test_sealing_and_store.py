from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from originlock.store import schema, zones
from originlock.store.db import Store
from originlock.store.errors import Invalid
from originlock.store.migrate import LATEST, current_version
from originlock.store.sealing import KeySealer, load_or_create_master_key


def test_seal_roundtrip_is_bound_to_its_row() -> None:
    sealer = KeySealer(os.urandom(32))
    sealed = sealer.seal(b"secret key", "cert-1")
    assert b"secret key" not in sealed
    assert sealer.open(sealed, "cert-1") == b"secret key"
    with pytest.raises(ValueError, match="does not open"):
        sealer.open(sealed, "cert-2")
    with pytest.raises(ValueError, match="does not open"):
        KeySealer(os.urandom(32)).open(sealed, "cert-1")
    assert "hidden" in repr(sealer)


def test_master_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = load_or_create_master_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_master_key(path) == key
    assert load_or_create_master_key(path, "ab" * 32) == bytes.fromhex("ab" * 32)
    with pytest.raises(ValueError):
        load_or_create_master_key(path, "abcd")


def test_failed_write_rolls_back_everything(store_url: str) -> None:
    store = Store(store_url, KeySealer(os.urandom(32)))
    with store.read() as conn:
        assert current_version(conn) == LATEST
    generation = store.generation()
    with store.write() as conn:
        account = zones.create_account(conn, "a")
    with pytest.raises(Invalid), store.write() as conn:
        zones.create_zone(conn, name="one.test", account_id=account)
        zones.create_zone(conn, name="one.test", account_id=account)  # duplicate: the whole write fails
    with store.read() as conn:
        assert conn.execute(select(schema.zones)).first() is None
    assert store.generation() == generation + 1
    store.close()


def test_reopen_does_not_migrate_twice(store_url: str) -> None:
    sealer = KeySealer(os.urandom(32))
    Store(store_url, sealer).close()
    store = Store(store_url, sealer)
    with store.read() as conn:
        assert current_version(conn) == LATEST
    store.close()
