"""API tokens: stored as SHA-256 hashes, with their policies and restrictions.

A token is the unit every authorisation decision reads (``api/authz.py``): its policies say what it may
do where (``store/token_policies.py``), its restrictions when and from where it may be used at all
(``not_before``, ``expires_on``, ``request_ip``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from originlock.store import schema
from originlock.store.errors import Invalid, NotFound
from originlock.store.stamps import from_iso, new_id, now_iso, to_iso
from originlock.store.token_policies import PERMISSIONS, Policy, flat_policy, policies_from_json, policies_to_json

__all__ = [
    "PERMISSIONS",
    "IpNetwork",
    "Restrictions",
    "Token",
    "backfill_details",
    "count_tokens",
    "create_token",
    "delete_token",
    "find_token",
    "get_token",
    "list_tokens",
    "parse_networks",
    "roll_token",
    "update_token",
]

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
    policies: tuple[Policy, ...]
    status: str
    restrictions: Restrictions = field(default_factory=Restrictions)
    issued_on: str | None = None
    modified_on: str | None = None

    def grants(self, permission: str, zone_id: str | None) -> bool:
        """``permission`` on ``zone_id`` (None: on the whole account): allowed by a policy, denied by none.

        For the whole account a deny on any zone counts: the token does not hold it everywhere.
        """
        allowed = any(p.effect == "allow" and p.grants(permission) and p.covers(zone_id) for p in self.policies)
        denied = any(
            p.effect == "deny" and p.denies(permission) and (zone_id is None or p.covers(zone_id))
            for p in self.policies
        )
        return allowed and not denied

    def allows(self, permission: str) -> bool:
        """Whether any allow policy grants ``permission`` somewhere."""
        return any(p.effect == "allow" and p.grants(permission) for p in self.policies)

    def allows_zone(self, zone_id: str) -> bool:
        return any(p.effect == "allow" and p.covers(zone_id) for p in self.policies)

    @property
    def permissions(self) -> frozenset[str]:
        """Every permission an allow policy names (a summary: :meth:`grants` decides)."""
        return frozenset(x for p in self.policies if p.effect == "allow" for x in p.permissions)

    @property
    def zone_ids(self) -> frozenset[str] | None:
        """The zones allow policies reach; None when one reaches every zone (a summary: :meth:`grants` decides)."""
        allows = [p for p in self.policies if p.effect == "allow"]
        if any(p.zones is None for p in allows):
            return None
        return frozenset(z for p in allows for z in p.zones or ())


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_networks(values: Sequence[str], what: str) -> tuple[IpNetwork, ...]:
    """CIDR strings (a bare address is a /32 or /128) as networks; a 400 names the first bad one."""
    out: list[IpNetwork] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise Invalid(f"{what}: {value!r} is not an IP address or CIDR range", 1004) from None
    return tuple(out)


def _restrictions(row: Row[Any]) -> Restrictions:
    ips = json.loads(row.request_ip) if row.request_ip else {}
    return Restrictions(
        not_before=from_iso(row.not_before) if row.not_before else None,
        expires_on=from_iso(row.expires_on) if row.expires_on else None,
        ip_in=parse_networks(ips.get("in", []), "request_ip.in"),
        ip_not_in=parse_networks(ips.get("not_in", []), "request_ip.not_in"),
    )


def _to_token(row: Row[Any]) -> Token:
    return Token(
        id=row.id,
        name=row.name,
        policies=policies_from_json(json.loads(row.policies)),
        status=row.status,
        restrictions=_restrictions(row),
        issued_on=row.created_on,
        modified_on=row.modified_on,
    )


def _select() -> Any:
    t, d = schema.api_tokens, schema.api_token_details
    return select(
        t.c.id,
        t.c.name,
        t.c.status,
        t.c.created_on,
        d.c.policies,
        d.c.not_before,
        d.c.expires_on,
        d.c.request_ip,
        d.c.modified_on,
    ).select_from(t.join(d, d.c.token_id == t.c.id))


def _check_policies(conn: Connection, policies: Sequence[Policy]) -> None:
    if not policies:
        raise Invalid("a token needs at least one policy", 1004)
    zones = {z for p in policies for z in p.zones or ()}
    for policy in policies:
        unknown = sorted(policy.permissions - set(PERMISSIONS) - {"*"})
        if unknown or not policy.permissions:
            raise Invalid(f"unknown permissions {unknown}; choose from {', '.join(PERMISSIONS)}", 1004)
    if zones:
        found = {r.id for r in conn.execute(select(schema.zones.c.id).where(schema.zones.c.id.in_(sorted(zones))))}
        missing = sorted(zones - found)
        if missing:
            raise Invalid(f"zones {missing} do not exist", 1001)


def _detail_values(policies: Sequence[Policy], limits: Restrictions) -> dict[str, Any]:
    ips = {"in": [str(n) for n in limits.ip_in], "not_in": [str(n) for n in limits.ip_not_in]}
    return {
        "policies": json.dumps(policies_to_json(policies)),
        "not_before": to_iso(limits.not_before) if limits.not_before else None,
        "expires_on": to_iso(limits.expires_on) if limits.expires_on else None,
        "request_ip": json.dumps(ips) if limits.ip_in or limits.ip_not_in else None,
        "modified_on": now_iso(),
    }


def _summary(policies: Sequence[Policy]) -> dict[str, Any]:
    # The flat columns as first shipped; kept filled for older readers, never read for a decision.
    token = Token("", "", tuple(policies), "active")
    zones = token.zone_ids
    return {
        "permissions": json.dumps(sorted(token.permissions)),
        "zone_ids": json.dumps(sorted(zones)) if zones is not None else None,
    }


def create_token(
    conn: Connection,
    name: str,
    permissions: list[str] | None,
    zone_ids: list[str] | None,
    secret: str | None = None,
    restrictions: Restrictions | None = None,
    policies: Sequence[Policy] | None = None,
) -> tuple[Token, str]:
    """Create a token from ``policies``, or from the flat ``permissions``/``zone_ids`` (one allow policy).

    Returns it with its secret, which is shown once and never stored.
    """
    if policies is None:
        if not permissions:
            raise Invalid(f"permissions must list at least one of {', '.join(PERMISSIONS)}", 1004)
        policies = (flat_policy(permissions, zone_ids),)
    _check_policies(conn, policies)
    # 30 random bytes -> 40 URL-safe characters, the length of a Cloudflare API token.
    secret = secret or secrets.token_urlsafe(30)
    token_id = new_id()
    conn.execute(
        insert(schema.api_tokens).values(
            id=token_id,
            name=name,
            token_hash=_hash(secret),
            status="active",
            created_on=now_iso(),
            **_summary(policies),
        )
    )
    conn.execute(
        insert(schema.api_token_details).values(
            token_id=token_id, **_detail_values(policies, restrictions or Restrictions())
        )
    )
    return get_token(conn, token_id), secret


def update_token(
    conn: Connection, token_id: str, name: str, policies: Sequence[Policy], limits: Restrictions, status: str
) -> Token:
    """Replace a token's name, policies, restrictions and status (Cloudflare's PUT); the secret stays."""
    get_token(conn, token_id)
    _check_policies(conn, policies)
    conn.execute(
        update(schema.api_tokens)
        .where(schema.api_tokens.c.id == token_id)
        .values(name=name, status=status, **_summary(policies))
    )
    details = schema.api_token_details
    conn.execute(update(details).where(details.c.token_id == token_id).values(**_detail_values(policies, limits)))
    return get_token(conn, token_id)


def roll_token(conn: Connection, token_id: str) -> str:
    """A new secret for the token; the old one stops working at once."""
    get_token(conn, token_id)
    secret = secrets.token_urlsafe(30)
    conn.execute(update(schema.api_tokens).where(schema.api_tokens.c.id == token_id).values(token_hash=_hash(secret)))
    return secret


def find_token(conn: Connection, secret: str) -> Token | None:
    """The active token whose secret this is; restrictions are the caller's to check (they need the request)."""
    row = conn.execute(_select().where(schema.api_tokens.c.token_hash == _hash(secret))).first()
    if row is None or row.status != "active":
        return None
    return _to_token(row)


def get_token(conn: Connection, token_id: str) -> Token:
    row = conn.execute(_select().where(schema.api_tokens.c.id == token_id)).first()
    if row is None:
        raise NotFound(f"token {token_id} not found", 1001)
    return _to_token(row)


def list_tokens(conn: Connection) -> list[Token]:
    rows = conn.execute(_select().order_by(schema.api_tokens.c.created_on, schema.api_tokens.c.id))
    return [_to_token(r) for r in rows]


def count_tokens(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(schema.api_tokens)).scalar_one())


def delete_token(conn: Connection, token_id: str) -> None:
    get_token(conn, token_id)
    conn.execute(delete(schema.api_token_details).where(schema.api_token_details.c.token_id == token_id))
    conn.execute(delete(schema.api_tokens).where(schema.api_tokens.c.id == token_id))


def backfill_details(conn: Connection) -> None:
    """Give every token without details the one allow policy its flat columns describe (migration 6)."""
    t, d = schema.api_tokens, schema.api_token_details
    rows = conn.execute(select(t).where(~t.c.id.in_(select(d.c.token_id))))
    for row in rows.all():
        zones = json.loads(row.zone_ids) if row.zone_ids is not None else None
        policy = flat_policy(json.loads(row.permissions), zones)
        conn.execute(insert(d).values(token_id=row.id, **_detail_values((policy,), Restrictions())))
