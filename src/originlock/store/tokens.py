"""API tokens: stored as SHA-256 hashes, with permissions, an optional zone scope and restrictions.

A token is the unit every authorisation decision reads (``api/authz.py``): what it may do
(``permissions``), where (``zone_ids``; None is every zone and the account itself) and when and from
where it may be used at all (``not_before``, ``expires_on``, ``request_ip``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from originlock.store import schema
from originlock.store.db import from_iso, now_iso, to_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.zones import new_id

__all__ = [
    "PERMISSIONS",
    "IpNetwork",
    "Restrictions",
    "Token",
    "create_token",
    "find_token",
    "get_token",
    "list_tokens",
    "parse_networks",
    "revoke_token",
]

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
    "tokens:read",
    "tokens:edit",
)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Restrictions:
    """When and from where a token works; the defaults restrict nothing (Cloudflare's too)."""

    not_before: datetime | None = None
    expires_on: datetime | None = None
    ip_in: tuple[IpNetwork, ...] = ()
    ip_not_in: tuple[IpNetwork, ...] = ()

    @property
    def unrestricted(self) -> bool:
        return self == Restrictions()


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    permissions: frozenset[str]
    #: None means every zone (and account-level resources).
    zone_ids: frozenset[str] | None
    status: str
    restrictions: Restrictions = field(default_factory=Restrictions)
    issued_on: str | None = None

    def allows(self, permission: str) -> bool:
        if "*" in self.permissions or permission in self.permissions:
            return True
        resource, _, level = permission.partition(":")
        return level == "read" and f"{resource}:edit" in self.permissions

    def allows_zone(self, zone_id: str) -> bool:
        return self.zone_ids is None or zone_id in self.zone_ids


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_networks(values: list[str], what: str) -> tuple[IpNetwork, ...]:
    """CIDR strings (a bare address is a /32 or /128) as networks; a 400 names the first bad one."""
    out: list[IpNetwork] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise Invalid(f"{what}: {value!r} is not an IP address or CIDR range", 1004) from None
    return tuple(out)


def _restrictions(row: Row[Any] | None) -> Restrictions:
    if row is None:
        return Restrictions()
    ips = json.loads(row.request_ip) if row.request_ip else {}
    return Restrictions(
        not_before=from_iso(row.not_before) if row.not_before else None,
        expires_on=from_iso(row.expires_on) if row.expires_on else None,
        ip_in=parse_networks(ips.get("in", []), "request_ip.in"),
        ip_not_in=parse_networks(ips.get("not_in", []), "request_ip.not_in"),
    )


def _to_token(conn: Connection, row: Row[Any]) -> Token:
    zone_ids = json.loads(row.zone_ids) if row.zone_ids is not None else None
    extra = conn.execute(
        select(schema.api_token_restrictions).where(schema.api_token_restrictions.c.token_id == row.id)
    ).first()
    return Token(
        id=row.id,
        name=row.name,
        permissions=frozenset(json.loads(row.permissions)),
        zone_ids=frozenset(zone_ids) if zone_ids is not None else None,
        status=row.status,
        restrictions=_restrictions(extra),
        issued_on=row.created_on,
    )


def _check_grant(conn: Connection, permissions: list[str], zone_ids: list[str] | None) -> None:
    unknown = sorted(set(permissions) - set(PERMISSIONS) - {"*"})
    if unknown or not permissions:
        raise Invalid(f"unknown permissions {unknown}; choose from {', '.join(PERMISSIONS)}", 1004)
    if zone_ids is not None:
        found = {r.id for r in conn.execute(select(schema.zones.c.id).where(schema.zones.c.id.in_(zone_ids)))}
        missing = sorted(set(zone_ids) - found)
        if missing:
            raise Invalid(f"zones {missing} do not exist", 1001)


def _write_restrictions(conn: Connection, token_id: str, limits: Restrictions) -> None:
    table = schema.api_token_restrictions
    conn.execute(delete(table).where(table.c.token_id == token_id))
    if limits.unrestricted:
        return
    ips = {"in": [str(n) for n in limits.ip_in], "not_in": [str(n) for n in limits.ip_not_in]}
    conn.execute(
        insert(table).values(
            token_id=token_id,
            not_before=to_iso(limits.not_before) if limits.not_before else None,
            expires_on=to_iso(limits.expires_on) if limits.expires_on else None,
            request_ip=json.dumps(ips) if limits.ip_in or limits.ip_not_in else None,
        )
    )


def create_token(
    conn: Connection,
    name: str,
    permissions: list[str],
    zone_ids: list[str] | None,
    secret: str | None = None,
    restrictions: Restrictions | None = None,
) -> tuple[Token, str]:
    """Create a token; returns it with its secret, which is shown once and never stored."""
    _check_grant(conn, permissions, zone_ids)
    # 30 random bytes -> 40 URL-safe characters, the length of a Cloudflare API token.
    secret = secret or secrets.token_urlsafe(30)
    token_id = new_id()
    conn.execute(
        insert(schema.api_tokens).values(
            id=token_id,
            name=name,
            token_hash=_hash(secret),
            permissions=json.dumps(sorted(set(permissions))),
            zone_ids=json.dumps(sorted(set(zone_ids))) if zone_ids is not None else None,
            status="active",
            created_on=now_iso(),
        )
    )
    _write_restrictions(conn, token_id, restrictions or Restrictions())
    return get_token(conn, token_id), secret


def find_token(conn: Connection, secret: str) -> Token | None:
    """The active token whose secret this is; restrictions are the caller's to check (they need the request)."""
    row = conn.execute(select(schema.api_tokens).where(schema.api_tokens.c.token_hash == _hash(secret))).first()
    if row is None or row.status != "active":
        return None
    return _to_token(conn, row)


def get_token(conn: Connection, token_id: str) -> Token:
    row = conn.execute(select(schema.api_tokens).where(schema.api_tokens.c.id == token_id)).first()
    if row is None:
        raise NotFound(f"token {token_id} not found", 1001)
    return _to_token(conn, row)


def list_tokens(conn: Connection) -> list[Token]:
    rows = conn.execute(select(schema.api_tokens).order_by(schema.api_tokens.c.created_on, schema.api_tokens.c.id))
    return [_to_token(conn, r) for r in rows]


def revoke_token(conn: Connection, token_id: str) -> Token:
    result = conn.execute(update(schema.api_tokens).where(schema.api_tokens.c.id == token_id).values(status="revoked"))
    if result.rowcount == 0:
        raise NotFound(f"token {token_id} not found", 1001)
    return get_token(conn, token_id)
