"""/user/tokens: create, list, verify and revoke API tokens.

Cloudflare's create body describes permission groups and resources; ours takes the flat form our
permissions have (``{"name", "permissions": [...], "zones": [...]}``) plus Cloudflare's restrictions
(``not_before``, ``expires_on``, ``condition.request_ip``), and says so in docs/api.md.

Who may manage which token is rule 3 of ``api/authz.py``: a token sees, creates and revokes only tokens
whose grant is within its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from originlock.api.authz import manages, require_grant_within, require_some
from originlock.api.deps import Caller, StoreDep
from originlock.api.envelope import ok
from originlock.store import tokens
from originlock.store.db import to_iso
from originlock.store.errors import Invalid, NotFound

router = APIRouter()

#: Cloudflare's limit on IP ranges per token condition list; more would only slow every request down.
MAX_IP_RANGES = 100


class IpLists(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_: list[str] = Field(default_factory=list, alias="in", max_length=MAX_IP_RANGES)
    not_in: list[str] = Field(default_factory=list, max_length=MAX_IP_RANGES)


class Condition(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request_ip: IpLists | None = None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=120)
    permissions: list[str] = Field(min_length=1, max_length=64)
    zones: list[str] | None = Field(default=None, max_length=1000)
    not_before: AwareDatetime | None = None
    expires_on: AwareDatetime | None = None
    condition: Condition | None = None


def restrictions_of(body: TokenCreate) -> tokens.Restrictions:
    ips = body.condition.request_ip if body.condition is not None else None
    limits = tokens.Restrictions(
        not_before=body.not_before.astimezone(UTC) if body.not_before else None,
        expires_on=body.expires_on.astimezone(UTC) if body.expires_on else None,
        ip_in=tokens.parse_networks(ips.in_, "condition.request_ip.in") if ips else (),
        ip_not_in=tokens.parse_networks(ips.not_in, "condition.request_ip.not_in") if ips else (),
    )
    if limits.not_before and limits.expires_on and limits.expires_on <= limits.not_before:
        raise Invalid("expires_on must be later than not_before", 1004)
    return limits


def _iso(moment: datetime | None) -> str | None:
    return to_iso(moment).replace(".000000Z", "Z") if moment is not None else None


def token_json(token: tokens.Token) -> dict[str, Any]:
    limits = token.restrictions
    condition: dict[str, Any] = {}
    if limits.ip_in or limits.ip_not_in:
        condition["request_ip"] = {"in": [str(n) for n in limits.ip_in], "not_in": [str(n) for n in limits.ip_not_in]}
    return {
        "id": token.id,
        "name": token.name,
        "status": token.status,
        "permissions": sorted(token.permissions),
        "zones": sorted(token.zone_ids) if token.zone_ids is not None else None,
        "issued_on": token.issued_on,
        "not_before": _iso(limits.not_before),
        "expires_on": _iso(limits.expires_on),
        "condition": condition,
    }


@router.get("/user/tokens/verify")
def verify_token(token: Caller) -> JSONResponse:
    """Any token may verify itself (the gate already refused it if it was expired or used from elsewhere)."""
    limits = token.restrictions
    return ok(
        {
            "id": token.id,
            "status": token.status,
            "not_before": _iso(limits.not_before),
            "expires_on": _iso(limits.expires_on),
        },
        messages=[{"code": 10000, "message": "This API Token is valid and active", "type": None}],
    )


@router.post("/user/tokens")
def create_token(body: TokenCreate, token: Caller, store: StoreDep) -> JSONResponse:
    require_some(token, "tokens:edit")
    limits = restrictions_of(body)
    require_grant_within(token, body.permissions, body.zones, limits)
    with store.write() as conn:
        created, secret = tokens.create_token(conn, body.name, body.permissions, body.zones, restrictions=limits)
    # The secret is in this one response and nowhere else: only its hash is stored.
    return ok({**token_json(created), "value": secret})


@router.get("/user/tokens")
def list_tokens(token: Caller, store: StoreDep) -> JSONResponse:
    require_some(token, "tokens:read")
    with store.read() as conn:
        items = [token_json(t) for t in tokens.list_tokens(conn) if manages(token, t)]
    return ok(
        items,
        {"page": 1, "per_page": max(len(items), 1), "count": len(items), "total_count": len(items), "total_pages": 1},
    )


@router.delete("/user/tokens/{token_id}")
def revoke_token(token_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    require_some(token, "tokens:edit")
    with store.write() as conn:
        target = tokens.get_token(conn, token_id)
        if not manages(token, target):
            # The same answer as for a token that does not exist: a scoped token cannot probe for others.
            raise NotFound(f"token {token_id} not found", 1001)
        revoked = tokens.revoke_token(conn, token_id)
    return ok({"id": revoked.id, "status": revoked.status})
