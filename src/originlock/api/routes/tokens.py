"""/user/tokens: create, list and revoke API tokens.

Cloudflare's create body describes permission groups and resources; ours takes the flat form our
permissions have (``{"name", "permissions": [...], "zones": [...]}``) and says so in docs/api.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from originlock.api.deps import Caller, StoreDep, allow
from originlock.api.envelope import ok
from originlock.store import tokens

router = APIRouter()


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=255)
    permissions: list[str] = Field(min_length=1)
    zones: list[str] | None = None


def token_json(token: tokens.Token, created_on: str | None = None) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "status": token.status,
        "permissions": sorted(token.permissions),
        "zones": sorted(token.zone_ids) if token.zone_ids is not None else None,
        "issued_on": created_on,
    }


@router.post("/user/tokens")
def create_token(body: TokenCreate, token: Caller, store: StoreDep) -> JSONResponse:
    allow(token, "tokens:edit")
    with store.write() as conn:
        created, secret = tokens.create_token(conn, body.name, body.permissions, body.zones)
    # The secret is in this one response and nowhere else: only its hash is stored.
    return ok({**token_json(created), "value": secret})


@router.get("/user/tokens")
def list_tokens(token: Caller, store: StoreDep) -> JSONResponse:
    allow(token, "tokens:edit")
    with store.read() as conn:
        items = [token_json(t, created) for t, created in tokens.list_tokens(conn)]
    return ok(
        items,
        {"page": 1, "per_page": max(len(items), 1), "count": len(items), "total_count": len(items), "total_pages": 1},
    )


@router.delete("/user/tokens/{token_id}")
def revoke_token(token_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    allow(token, "tokens:edit")
    with store.write() as conn:
        revoked = tokens.revoke_token(conn, token_id)
    return ok({"id": revoked.id, "status": revoked.status})
