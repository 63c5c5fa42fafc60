"""/accounts/{account_id}: read and edit an account (Terraform's `data cloudflare_account` and `cloudflare_account`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import Connection, Row, select, update

from originlock.api.deps import Caller, StoreDep, ZonesPage, allow
from originlock.api.envelope import ok, result_info
from originlock.store import audit, schema
from originlock.store.db import to_iso
from originlock.store.errors import Invalid, NotFound

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


def _moment(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        return to_iso(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise Invalid(f"{what} must be an RFC 3339 date or time", 1004) from None


@router.get("/accounts/{account_id}/audit_logs")
def audit_logs(
    account_id: str,
    token: Caller,
    store: StoreDep,
    page: ZonesPage,
    since: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[str | None, Query(max_length=64)] = None,
    direction: Literal["asc", "desc"] = "desc",
    action_type: Annotated[str | None, Query(alias="action.type", max_length=16)] = None,
    actor_ip: Annotated[str | None, Query(alias="actor.ip", max_length=64)] = None,
    zone_name: Annotated[str | None, Query(alias="zone.name", max_length=253)] = None,
    id: Annotated[str | None, Query(max_length=64)] = None,
) -> JSONResponse:
    """Every write through the API, newest first (api/audit.py records them)."""
    allow(token, "*")  # the whole account's history: only an unrestricted token
    query = audit.AuditQuery(
        account_id=account_id,
        include_user=True,
        since=_moment(since, "since"),
        before=_moment(before, "before"),
        action=action_type,
        actor_ip=actor_ip,
        zone_name=zone_name,
        id=id,
        newest_first=direction == "desc",
    )
    with store.read() as conn:
        _get(conn, account_id)
        rows, total = audit.list_events(conn, query, page.offset, page.per_page)
    items = [audit.entry_json(r) for r in rows]
    return ok(items, result_info(page.page, page.per_page, len(items), total))


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
