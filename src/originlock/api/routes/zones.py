"""/accounts and /zones (/user/tokens/verify is in tokens.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Row, select

from originlock.api.authz import readable_zones, require_some
from originlock.api.deps import Caller, StoreDep, ZoneEdit, ZoneRead, ZonesPage, allow
from originlock.api.envelope import ok, result_info
from originlock.store import schema, zones
from originlock.store.errors import Invalid

router = APIRouter()


class AccountRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str


class ZoneCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    account: AccountRef | None = None
    type: str = "full"


class ZonePatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    paused: bool | None = None
    type: str | None = None


def zone_json(conn: Connection, row: Row[Any]) -> dict[str, Any]:
    account = conn.execute(select(schema.accounts).where(schema.accounts.c.id == row.account_id)).one()
    return {
        "id": row.id,
        "name": row.name,
        "status": "active",
        "paused": row.paused,
        "type": row.type,
        "development_mode": 0,
        # A self-hosted edge is not the authoritative DNS: there are no name servers to delegate to.
        "name_servers": [],
        "original_name_servers": None,
        "original_registrar": None,
        "original_dnshost": None,
        "vanity_name_servers": [],
        "created_on": row.created_on,
        "modified_on": row.modified_on,
        "activated_on": row.created_on,
        "account": {"id": account.id, "name": account.name},
        "owner": {"id": None, "type": "user", "email": None},
        "meta": {"custom_certificate_quota": 0, "page_rule_quota": 0, "phishing_detected": False},
        "plan": {
            "id": "originlock",
            "name": "originlock",
            "price": 0,
            "currency": "USD",
            "frequency": "",
            "is_subscribed": True,
            "can_subscribe": False,
            "legacy_id": "originlock",
            "legacy_discount": False,
            "externally_managed": False,
        },
        "permissions": [],
    }


@router.get("/accounts")
def list_accounts(token: Caller, store: StoreDep, page: ZonesPage) -> JSONResponse:
    with store.read() as conn:
        rows = zones.list_accounts(conn)
    items = [{"id": r.id, "name": r.name, "type": "standard", "created_on": r.created_on, "settings": {}} for r in rows]
    chunk = items[page.offset : page.offset + page.per_page]
    return ok(chunk, result_info(page.page, page.per_page, len(chunk), len(items)))


@router.post("/zones")
def create_zone(body: ZoneCreate, token: Caller, store: StoreDep) -> JSONResponse:
    allow(token, "zone:edit")
    if token.zone_ids is not None:
        allow(token, "*")  # a zone-scoped token cannot create zones outside its scope
    with store.write() as conn:
        account_id = body.account.id if body.account else None
        if account_id is None:
            accounts = zones.list_accounts(conn)
            if len(accounts) != 1:
                raise Invalid("account.id is required", 1002)
            account_id = accounts[0].id
        row = zones.create_zone(conn, name=body.name, account_id=account_id, zone_type=body.type)
        return ok(zone_json(conn, row))


@router.get("/zones")
def list_zones(
    token: Caller,
    store: StoreDep,
    page: ZonesPage,
    name: Annotated[str | None, Query(max_length=300)] = None,
    account_id: Annotated[str | None, Query(alias="account.id", max_length=64)] = None,
    account_name: Annotated[str | None, Query(alias="account.name", max_length=300)] = None,
    status: Literal["initializing", "pending", "active", "moved"] | None = None,
    match: Literal["any", "all"] = "all",
    order: Literal["name", "status", "account.id", "account.name", "plan.id"] = "name",
    direction: Literal["asc", "desc"] = "asc",
) -> JSONResponse:
    """``name`` takes Cloudflare's operators: ``starts_with:``, ``ends_with:``, ``contains:``, ``not_equal:``..."""
    require_some(token, "zone:read")  # and only the zones it may read are listed
    with store.read() as conn:
        zone_ids = readable_zones(conn, token, "zone:read")
        rows, total = zones.list_zones(
            conn,
            name=name,
            account_id=account_id,
            account_name=account_name,
            status=status,
            zone_ids=zone_ids,
            match=match,
            order=order,
            order_desc=direction == "desc",
            offset=page.offset,
            limit=page.per_page,
        )
        items = [zone_json(conn, r) for r in rows]
    # Past the last page: an empty result, never an error (the SDK pages until it sees one; spec §8.4).
    return ok(items, result_info(page.page, page.per_page, len(items), total))


@router.get("/zones/{zone_id}")
def get_zone(store: StoreDep, access: ZoneRead) -> JSONResponse:
    with store.read() as conn:
        return ok(zone_json(conn, zones.get_zone(conn, access.zone_id)))


@router.patch("/zones/{zone_id}")
def edit_zone(body: ZonePatch, store: StoreDep, access: ZoneEdit) -> JSONResponse:
    with store.write() as conn:
        row = zones.update_zone(conn, access.zone_id, paused=body.paused, zone_type=body.type)
        return ok(zone_json(conn, row))


@router.delete("/zones/{zone_id}")
def delete_zone(store: StoreDep, access: ZoneEdit) -> JSONResponse:
    with store.write() as conn:
        zones.delete_zone(conn, access.zone_id)
    return ok({"id": access.zone_id})
