"""API tokens: stored as SHA-256 hashes, with permissions and an optional zone scope."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from originlock.store import schema
from originlock.store.db import now_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.zones import new_id

__all__ = ["PERMISSIONS", "Token", "create_token", "find_token", "list_tokens", "revoke_token"]

#: What a token may be granted. ``*:edit`` implies ``*:read``; ``*`` (admin) grants everything.
PERMISSIONS = (
    "zone:read",
    "zone:edit",
    "dns:read",
    "dns:edit",
    "ssl:read",
    "ssl:edit",
    "firewall:read",
    "firewall:edit",
    "alerting:read",
    "alerting:edit",
    "tokens:edit",
)


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    permissions: frozenset[str]
    #: None means every zone.
    zone_ids: frozenset[str] | None
    status: str

    def allows(self, permission: str) -> bool:
        if "*" in self.permissions or permission in self.permissions:
            return True
        resource, _, level = permission.partition(":")
        return level == "read" and f"{resource}:edit" in self.permissions

    def allows_zone(self, zone_id: str) -> bool:
        return self.zone_ids is None or zone_id in self.zone_ids


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _to_token(row: Row[Any]) -> Token:
    zone_ids = json.loads(row.zone_ids) if row.zone_ids is not None else None
    return Token(
        id=row.id,
        name=row.name,
        permissions=frozenset(json.loads(row.permissions)),
        zone_ids=frozenset(zone_ids) if zone_ids is not None else None,
        status=row.status,
    )


def create_token(
    conn: Connection, name: str, permissions: list[str], zone_ids: list[str] | None, secret: str | None = None
) -> tuple[Token, str]:
    """Create a token; returns it with its secret, which is shown once and never stored."""
    unknown = sorted(set(permissions) - set(PERMISSIONS) - {"*"})
    if unknown or not permissions:
        raise Invalid(f"unknown permissions {unknown}; choose from {', '.join(PERMISSIONS)}", 1004)
    if zone_ids is not None:
        found = {r.id for r in conn.execute(select(schema.zones.c.id).where(schema.zones.c.id.in_(zone_ids)))}
        missing = sorted(set(zone_ids) - found)
        if missing:
            raise Invalid(f"zones {missing} do not exist", 1001)
    # 30 random bytes -> 40 URL-safe characters, the length of a Cloudflare API token.
    secret = secret or secrets.token_urlsafe(30)
    token_id = new_id()
    conn.execute(
        insert(schema.api_tokens).values(
            id=token_id,
            name=name,
            token_hash=_hash(secret),
            permissions=json.dumps(sorted(set(permissions))),
            zone_ids=json.dumps(sorted(zone_ids)) if zone_ids is not None else None,
            status="active",
            created_on=now_iso(),
        )
    )
    row = conn.execute(select(schema.api_tokens).where(schema.api_tokens.c.id == token_id)).one()
    return _to_token(row), secret


def find_token(conn: Connection, secret: str) -> Token | None:
    row = conn.execute(select(schema.api_tokens).where(schema.api_tokens.c.token_hash == _hash(secret))).first()
    if row is None or row.status != "active":
        return None
    return _to_token(row)


def list_tokens(conn: Connection) -> list[tuple[Token, str]]:
    rows = conn.execute(select(schema.api_tokens).order_by(schema.api_tokens.c.created_on))
    return [(_to_token(r), r.created_on) for r in rows]


def revoke_token(conn: Connection, token_id: str) -> Token:
    result = conn.execute(update(schema.api_tokens).where(schema.api_tokens.c.id == token_id).values(status="revoked"))
    if result.rowcount == 0:
        raise NotFound(f"token {token_id} not found", 1001)
    return _to_token(conn.execute(select(schema.api_tokens).where(schema.api_tokens.c.id == token_id)).one())
