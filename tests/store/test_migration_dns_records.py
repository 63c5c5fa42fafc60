"""Migration 6 brings a version-5 database's DNS records (and accounts) to the full record set, keeping rows."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, select, text

from originlock.store import dns, schema
from originlock.store.db import Store
from originlock.store.migrate import LATEST, current_version
from originlock.store.sealing import KeySealer

# The two tables as version 5 shipped them (the others are created by create_all as they are today).
OLD = [
    "CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE generation (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE accounts (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255) NOT NULL, created_on VARCHAR(32) NOT NULL)",
    "CREATE TABLE zones (id VARCHAR(36) PRIMARY KEY, account_id VARCHAR(36) NOT NULL REFERENCES accounts(id),"
    " name VARCHAR(253) NOT NULL UNIQUE, type VARCHAR(16) NOT NULL, paused BOOLEAN NOT NULL,"
    " created_on VARCHAR(32) NOT NULL, modified_on VARCHAR(32) NOT NULL)",
    "CREATE TABLE dns_records (id VARCHAR(36) PRIMARY KEY, zone_id VARCHAR(36) NOT NULL REFERENCES zones(id),"
    " type VARCHAR(8) NOT NULL, name VARCHAR(253) NOT NULL, content VARCHAR(255) NOT NULL, proxied BOOLEAN NOT NULL,"
    " ttl INTEGER NOT NULL, comment TEXT, created_on VARCHAR(32) NOT NULL, modified_on VARCHAR(32) NOT NULL)",
    "INSERT INTO meta VALUES ('schema_version', '5')",
    "INSERT INTO generation VALUES (1, 1)",
    "INSERT INTO accounts VALUES ('a1', 'acct', '2026-01-01T00:00:00.000000Z')",
    "INSERT INTO zones VALUES ('z1', 'a1', 'old.test', 'full', false, '2026-01-01T00:00:00.000000Z',"
    " '2026-01-01T00:00:00.000000Z')",
    "INSERT INTO dns_records VALUES ('r1', 'z1', 'A', 'app.old.test', '192.0.2.1', true, 1, 'kept',"
    " '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
]


def test_version_5_database_is_migrated(store_url: str) -> None:
    url = store_url
    engine_url = url.split("?")[0].replace("postgresql://", "postgresql+psycopg://")
    args = {}
    if "schema=" in url:
        search_path = url.split("schema=")[1]
        args = {"options": f"-csearch_path={search_path}"}
        with create_engine(engine_url).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{search_path}"'))
    with create_engine(engine_url, connect_args=args).begin() as conn:
        for statement in OLD:
            conn.execute(text(statement))
    store = Store(url, KeySealer(b"\0" * 32))
    try:
        with store.read() as conn:
            assert current_version(conn) == LATEST
            old = dns.get_record(conn, "z1", "r1")
            assert (old.content, old.comment, json.loads(old.tags), old.priority) == ("192.0.2.1", "kept", [], None)
            assert conn.execute(select(schema.accounts.c.settings)).scalar_one() == "{}"
        with store.write() as conn:
            row = dns.create_record(conn, "z1", dns.RecordInput("OPENPGPKEY", "k", "QUJD" * 300, tags=("a:b",)))
            assert row.type == "OPENPGPKEY" and len(row.content) == 1200
    finally:
        store.close()
