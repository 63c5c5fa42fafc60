"""/accounts/{account_id}/alerting/v3: notification policies and webhook destinations (Cloudflare's shapes).

The alert types are those the product raises (``available_alerts`` lists them); webhooks are the delivery
mechanism, and delivered notifications are the ``history``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import Row, select

from originlock.api.deps import Caller, StoreDep, allow
from originlock.api.envelope import ok, result_info
from originlock.store import alerts, schema
from originlock.store.errors import NotFound
from originlock.store.tokens import Token

router = APIRouter()
BASE = "/accounts/{account_id}/alerting/v3"


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=255)
    alert_type: str
    enabled: StrictBool = True
    mechanisms: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    filters: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class PolicyPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    alert_type: str | None = None
    enabled: StrictBool | None = None
    mechanisms: dict[str, list[dict[str, Any]]] | None = None
    filters: dict[str, Any] | None = None
    description: str | None = None


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=255)
    url: str = Field(min_length=1)
    secret: str | None = Field(default=None, repr=False)


def _account(request: Request, store: Any, token: Token, account_id: str, permission: str) -> None:
    allow(token, permission)
    if token.zone_ids is not None:
        allow(token, "*")  # account-wide settings are not for zone-scoped tokens
    with store.read() as conn:
        if conn.execute(select(schema.accounts.c.id).where(schema.accounts.c.id == account_id)).first() is None:
            raise NotFound(f"account {account_id} not found", 1001)


def policy_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "alert_type": row.alert_type,
        "enabled": row.enabled,
        "mechanisms": json.loads(row.mechanisms),
        "filters": json.loads(row.filters),
        "created": row.created,
        "modified": row.modified,
    }


def webhook_json(row: Row[Any]) -> dict[str, Any]:
    # The secret is write-only: it is sealed at rest and never returned.
    return {
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "type": "generic",
        "created_at": row.created_at,
        "last_success": row.last_success,
        "last_failure": row.last_failure,
    }


@router.post(BASE + "/policies")
def create_policy(account_id: str, body: PolicyBody, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:edit")
    with store.write() as conn:
        policy_id = alerts.create_policy(
            conn,
            account_id,
            name=body.name,
            alert_type=body.alert_type,
            enabled=body.enabled,
            mechanisms=body.mechanisms,
            filters=body.filters,
            description=body.description,
        )
    return ok({"id": policy_id})


@router.get(BASE + "/policies")
def list_policies(account_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:read")
    with store.read() as conn:
        items = [policy_json(r) for r in alerts.list_policies(conn, account_id)]
    return ok(items, result_info(1, max(len(items), 1), len(items), len(items)))


@router.get(BASE + "/policies/{policy_id}")
def get_policy(account_id: str, policy_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:read")
    with store.read() as conn:
        return ok(policy_json(alerts.get_policy(conn, account_id, policy_id)))


@router.put(BASE + "/policies/{policy_id}")
def update_policy(
    account_id: str, policy_id: str, body: PolicyPatch, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:edit")
    changes = {k: v for k, v in body.model_dump().items() if k in body.model_fields_set and v is not None}
    with store.write() as conn:
        alerts.update_policy(conn, account_id, policy_id, changes)
    return ok({"id": policy_id})


@router.delete(BASE + "/policies/{policy_id}")
def delete_policy(account_id: str, policy_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:edit")
    with store.write() as conn:
        alerts.delete_policy(conn, account_id, policy_id)
    return ok(None)


@router.post(BASE + "/destinations/webhooks")
def create_webhook(
    account_id: str, body: WebhookBody, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:edit")
    with store.write() as conn:
        webhook_id = alerts.create_webhook(
            conn, store.sealer, account_id, name=body.name, url=body.url, secret=body.secret
        )
    return ok({"id": webhook_id})


@router.get(BASE + "/destinations/webhooks")
def list_webhooks(account_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:read")
    with store.read() as conn:
        items = [webhook_json(r) for r in alerts.list_webhooks(conn, account_id)]
    return ok(items, result_info(1, max(len(items), 1), len(items), len(items)))


@router.get(BASE + "/destinations/webhooks/{webhook_id}")
def get_webhook(account_id: str, webhook_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:read")
    with store.read() as conn:
        return ok(webhook_json(alerts.get_webhook(conn, account_id, webhook_id)))


@router.put(BASE + "/destinations/webhooks/{webhook_id}")
def update_webhook(
    account_id: str, webhook_id: str, body: WebhookBody, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:edit")
    with store.write() as conn:
        alerts.update_webhook(
            conn, store.sealer, account_id, webhook_id, name=body.name, url=body.url, secret=body.secret
        )
    return ok({"id": webhook_id})


@router.delete(BASE + "/destinations/webhooks/{webhook_id}")
def delete_webhook(account_id: str, webhook_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:edit")
    with store.write() as conn:
        alerts.delete_webhook(conn, account_id, webhook_id)
    return ok(None)
