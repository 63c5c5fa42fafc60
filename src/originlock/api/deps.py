"""Request-scoped dependencies: the store, the caller's token, id and permission checks, pagination."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from originlock.api.authz import require, require_account
from originlock.api.gate import authenticate_headers
from originlock.store.db import Store
from originlock.store.errors import StoreError
from originlock.store.tokens import Token

__all__ = [
    "Caller",
    "DnsEdit",
    "DnsRead",
    "FirewallEdit",
    "FirewallRead",
    "Page",
    "RecordsPage",
    "SslEdit",
    "SslRead",
    "ZoneAccess",
    "ZoneEdit",
    "ZoneRead",
    "ZonesPage",
    "clock",
    "get_store",
    "request_clock",
]

_ZONE_ID = re.compile(r"^[0-9a-f]{32}$")


class BadRoute(StoreError):
    """An identifier in the path is malformed (Cloudflare answers 7003)."""

    http_status = 400


# The dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in its thread
# pool, and a write went through eight such hops (its own and the audit log's read of "before"), each a
# wait for a thread on a busy machine, on the way from the API request to every edge.


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def clock(request: Request) -> datetime:
    """The app's clock (tests fix it), else the wall clock."""
    now = getattr(request.app.state, "clock", None)
    return now() if now is not None else datetime.now(UTC)


async def request_clock(request: Request) -> datetime:
    """:func:`clock` as a dependency (``Depends(request_clock)``), without a thread hop."""
    return clock(request)


async def authenticate(request: Request, store: Annotated[Store, Depends(get_store)]) -> Token:
    """The token ``ApiGate`` checked before the body was read (every API request passes it)."""
    token = request.scope.get("state", {}).get("token")
    if isinstance(token, Token):
        return token
    client = request.client.host if request.client else None
    return await run_in_threadpool(authenticate_headers, store, request.headers, client, clock(request))


Caller = Annotated[Token, Depends(authenticate)]
StoreDep = Annotated[Store, Depends(get_store)]


def check_zone_id(request: Request, zone_id: str) -> None:
    if not _ZONE_ID.match(zone_id):
        raise BadRoute(f"Could not route to {request.url.path}, perhaps your object identifier is invalid?", 7003)


def allow(token: Token, permission: str, zone_id: str | None = None) -> None:
    """The permission on one zone, or (``zone_id`` None) on the whole account: see ``api/authz.py``."""
    if zone_id is None:
        require_account(token, permission)
    else:
        require(token, permission, zone_id)


@dataclass(frozen=True)
class ZoneAccess:
    """A route's zone id, validated and authorised, with the token that asked."""

    zone_id: str
    token: Token


def zone_access(permission: str) -> Callable[[Request, str, Token], Awaitable[ZoneAccess]]:
    async def dependency(request: Request, zone_id: str, token: Caller) -> ZoneAccess:
        check_zone_id(request, zone_id)
        allow(token, permission, zone_id)
        return ZoneAccess(zone_id, token)

    return dependency


ZoneRead = Annotated[ZoneAccess, Depends(zone_access("zone:read"))]
ZoneEdit = Annotated[ZoneAccess, Depends(zone_access("zone:edit"))]
DnsRead = Annotated[ZoneAccess, Depends(zone_access("dns:read"))]
DnsEdit = Annotated[ZoneAccess, Depends(zone_access("dns:edit"))]
SslRead = Annotated[ZoneAccess, Depends(zone_access("ssl:read"))]
SslEdit = Annotated[ZoneAccess, Depends(zone_access("ssl:edit"))]
FirewallRead = Annotated[ZoneAccess, Depends(zone_access("firewall:read"))]
FirewallEdit = Annotated[ZoneAccess, Depends(zone_access("firewall:edit"))]


#: Highest page number accepted: far past any real listing, and small enough that page x per_page fits the
#: databases' 64-bit OFFSET (a larger one made SQLite overflow: a 500 found by schemathesis).
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class Page:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def page_params(default: int, low: int, high: int) -> Callable[[int, int | None], Awaitable[Page]]:
    async def dependency(
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1, per_page: Annotated[int | None, Query(ge=1)] = None
    ) -> Page:
        size = default if per_page is None else min(max(per_page, low), high)
        return Page(page, size)

    return dependency


#: /zones and /accounts: 5 to 50 per page, 20 by default (spec §8.4).
ZonesPage = Annotated[Page, Depends(page_params(20, 5, 50))]
#: /dns_records: 100 by default.
RecordsPage = Annotated[Page, Depends(page_params(100, 5, 5000))]
