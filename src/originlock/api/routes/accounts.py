"""/accounts/{account_id}: read and edit an account (Terraform's `data cloudflare_account` and `cloudflare_account`)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import Connection, Row, select, update

from originlock.api.deps import Caller, StoreDep, allow
from originlock.api.envelope import ok
from originlock.store import schema
from originlock.store.errors import NotFound

router = APIRouter()

#: Cloudflare's account settings and their defaults; what a PUT sends is stored and returned.
DEFAULT_SETTINGS: dict[str, Any] = {
    "abuse_contact_email": None,
    "enforce_twofactor": False,
    "api_access_enabled": None,
    "default_nameservers": "cloudflare.standard",
    "use_account_custom_ns_by_default": False,
}


class AccountSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")
    abuse_contact_email: str | None = Field(default=None, max_length=255)
    enforce_twofactor: StrictBool | None = None
    api_access_enabled: StrictBool | None = None
    default_nameservers: str | None = Field(default=None, max_length=64)
    use_account_custom_ns_by_default: StrictBool | None = None


class AccountBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=255)
    settings: AccountSettings | None = None


def account_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "type": "standard",
        "created_on": row.created_on,
        "settings": {**DEFAULT_SETTINGS, **json.loads(row.settings or "{}")},
    }


def _get(conn: Connection, account_id: str) -> Row[Any]:
    row = conn.execute(select(schema.accounts).where(schema.accounts.c.id == account_id)).first()
    if row is None:
        raise NotFound(f"account {account_id} not found", 1001)
    return row


@router.get("/accounts/{account_id}")
def get_account(account_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    # Readable by any valid token, as GET /accounts is.
    with store.read() as conn:
        return ok(account_json(_get(conn, account_id)))


@router.put("/accounts/{account_id}")
def update_account(account_id: str, body: AccountBody, token: Caller, store: StoreDep) -> JSONResponse:
    allow(token, "*")  # account-wide: only an unrestricted token
    with store.write() as conn:
        row = _get(conn, account_id)
        settings = json.loads(row.settings or "{}")
        if body.settings is not None:
            settings.update(body.settings.model_dump(exclude_unset=True))
        conn.execute(
            update(schema.accounts)
            .where(schema.accounts.c.id == account_id)
            .values(name=body.name, settings=json.dumps(settings))
        )
        return ok(account_json(_get(conn, account_id)))
