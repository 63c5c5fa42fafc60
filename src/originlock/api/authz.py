"""Authorisation: one rule, decided here and nowhere else (docs/security.md).

1. A token may do permission P on zone Z only if one of its policies allows P on Z (``x:edit`` implies
   ``x:read``, ``*`` implies everything) and none denies it there (``Token.grants``). An object looked up
   by its own id (a certificate, a record, a ruleset) is authorised against the zone that owns it, never
   against the zone named in the request alone.
2. Account-level actions (creating a zone, alert policies, Origin CA certificates for names in no zone)
   belong to no zone: they need a token scoped to every zone.
3. A token may create, see and manage only tokens whose grant is within its own: permissions it holds,
   zones it covers, and restrictions at least as tight as its own. A zone-scoped ``tokens:edit`` token
   therefore cannot mint a wider token, nor list or revoke one.
4. A token works only inside its restrictions (``not_before``, ``expires_on``, ``condition.request_ip``),
   checked on every request before the request's body is read (``api/gate.py``).

Functions over :class:`~originlock.store.tokens.Token`; the clock and client address are given, and only
:func:`readable_zones` reads the store (the zone ids a listing may show).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select

from originlock.store import schema
from originlock.store.errors import Forbidden, StoreError
from originlock.store.token_policies import Policy
from originlock.store.tokens import IpNetwork, Restrictions, Token

__all__ = [
    "Unauthorized",
    "check_usable",
    "grant_within",
    "manages",
    "readable_zones",
    "require",
    "require_account",
    "require_grant_within",
    "require_some",
    "require_zones",
]


class Unauthorized(StoreError):
    http_status = 401


def _denied(permission: str, where: str) -> Forbidden:
    # Cloudflare's code and wording, then which permission was missing (issue 14: a 403 names it).
    return Forbidden(f"Authentication error: this token does not grant {permission} on {where}", 10000)


def require(token: Token, permission: str, zone_id: str) -> None:
    """Rule 1 for one zone."""
    if not token.grants(permission, zone_id):
        raise _denied(permission, f"zone {zone_id}")


def require_zones(token: Token, permission: str, zone_ids: Iterable[str | None]) -> None:
    """Rule 1 for every zone an object belongs to; ``None`` (a name in no zone) falls under rule 2."""
    for zone_id in zone_ids:
        if zone_id is None:
            require_account(token, permission)
        else:
            require(token, permission, zone_id)


def require_some(token: Token, permission: str) -> None:
    """The permission on at least one zone: for listings, which then show only what the token may see."""
    if not token.allows(permission):
        raise _denied(permission, "any zone")


def readable_zones(conn: Connection, token: Token, permission: str) -> list[str] | None:
    """The zones a listing may show (None: all of them), by the same rule as every other check."""
    if token.grants(permission, None):
        return None
    candidates = token.zone_ids
    if candidates is None:  # every zone, less some a deny policy takes away
        candidates = frozenset(r.id for r in conn.execute(select(schema.zones.c.id)))
    return sorted(z for z in candidates if token.grants(permission, z))


def require_account(token: Token, permission: str) -> None:
    """Rule 2: the permission on the whole account (every zone)."""
    if not token.grants(permission, None):
        raise _denied(permission, "the account (every zone)")


def _subnet(inner: IpNetwork, outer: IpNetwork) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _overlaps(a: IpNetwork, b: IpNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)


def _ips_within(child: Restrictions, parent: Restrictions) -> bool:
    if parent.ip_in and not (child.ip_in and all(any(_subnet(c, p) for p in parent.ip_in) for c in child.ip_in)):
        return False
    for banned in parent.ip_not_in:
        if any(_subnet(banned, c) for c in child.ip_not_in):
            continue
        # Still reachable through the child's allowed ranges (all addresses when it lists none)?
        if not child.ip_in or any(_overlaps(banned, c) for c in child.ip_in):
            return False
    return True


def grant_within(parent: Token, policies: Iterable[Policy], limits: Restrictions) -> str | None:
    """Rule 3: why a grant (``policies`` and ``limits``) is wider than ``parent``'s, or None when it is within.

    Every permission an allow policy names must be granted by ``parent`` on every zone the policy reaches
    (on the whole account when it reaches every zone); deny policies only narrow, so they need no check.
    """
    for policy in policies:
        if policy.effect != "allow":
            continue
        for permission in sorted(policy.permissions):
            if policy.zones is None:
                if not parent.grants(permission, None):
                    if parent.allows(permission):
                        return f"{permission} on every zone: this token has it on some zones only"
                    return f"permission {permission} is not granted to this token"
                continue
            outside = sorted(z for z in policy.zones if not parent.grants(permission, z))
            if outside:
                if not parent.allows(permission):
                    return f"permission {permission} is not granted to this token"
                return f"{permission} on zones {outside}: outside this token's zones"
    mine = parent.restrictions
    if mine.expires_on is not None and (limits.expires_on is None or limits.expires_on > mine.expires_on):
        return "this token expires; the new one must expire no later"
    if mine.not_before is not None and (limits.not_before is None or limits.not_before < mine.not_before):
        return "this token has a not_before; the new one must start no earlier"
    if not _ips_within(limits, mine):
        return "condition.request_ip must allow no address this token is refused"
    return None


def require_grant_within(parent: Token, policies: Iterable[Policy], limits: Restrictions) -> None:
    reason = grant_within(parent, policies, limits)
    if reason is not None:
        raise Forbidden(f"Authentication error: a token can only grant what it has: {reason}", 10000)


def manages(parent: Token, other: Token) -> bool:
    """Rule 3 applied to an existing token: can ``parent`` see and manage ``other``?"""
    return grant_within(parent, other.policies, other.restrictions) is None


def check_usable(token: Token, now: datetime, client_ip: str | None) -> None:
    """Rule 4. Raises Cloudflare's answers: 401 ``Invalid API Token`` outside the validity window, 403 9109
    ``Cannot use the access token from location`` from an address the token excludes."""
    limits = token.restrictions
    if limits.not_before is not None and now < limits.not_before:
        raise Unauthorized("Invalid API Token", 1000)
    if limits.expires_on is not None and now >= limits.expires_on:
        raise Unauthorized("Invalid API Token", 1000)
    if not (limits.ip_in or limits.ip_not_in):
        return
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        raise Forbidden("Cannot use the access token from location: unknown", 9109) from None
    inside = not limits.ip_in or any(address in n for n in limits.ip_in)
    if not inside or any(address in n for n in limits.ip_not_in):
        raise Forbidden(f"Cannot use the access token from location: {address}", 9109)
