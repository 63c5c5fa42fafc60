"""Migration 6: tokens from before policies get the one allow policy their flat permissions and zones meant."""

from __future__ import annotations

import hashlib
import os

from sqlalchemy import insert, update

from originlock.store import schema
from originlock.store.db import Store, now_iso
from originlock.store.migrate import current_version
from originlock.store.sealing import KeySealer
from originlock.store.tokens import find_token, get_token
from originlock.store.zones import create_account, create_zone

SEALER = KeySealer(os.urandom(32))


def test_existing_tokens_keep_their_grant(store_url: str) -> None:
    store = Store(store_url, SEALER)
    with store.write() as conn:
        account = create_account(conn, "acct")
        zone = create_zone(conn, name="a.test", account_id=account).id
        schema.api_token_details.drop(conn)  # a database from before migration 6, with two tokens in it
        conn.execute(update(schema.meta).where(schema.meta.c.key == "schema_version").values(value="5"))
        for token_id, secret, permissions, zones in (
            ("1" * 32, "admin-secret", '["*"]', None),
            ("2" * 32, "scoped-secret", '["dns:edit"]', f'["{zone}"]'),
        ):
            conn.execute(
                insert(schema.api_tokens).values(
                    id=token_id,
                    name="old",
                    token_hash=hashlib.sha256(secret.encode()).hexdigest(),
                    permissions=permissions,
                    zone_ids=zones,
                    status="active",
                    created_on=now_iso(),
                )
            )
    store.close()
    store = Store(store_url, SEALER)
    try:
        with store.read() as conn:
            assert current_version(conn) >= 6
            admin = find_token(conn, "admin-secret")
            scoped = get_token(conn, "2" * 32)
        assert admin is not None and admin.grants("zone:edit", None) and admin.grants("*", zone)
        assert scoped.grants("dns:edit", zone) and scoped.grants("dns:read", zone)
        assert not scoped.grants("dns:edit", "f" * 32) and not scoped.grants("ssl:read", zone)
        assert not scoped.grants("dns:edit", None)
    finally:
        store.close()
