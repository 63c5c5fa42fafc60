"""/accounts/{account_id}/alerting/v3/{available_alerts,history}: what can be raised and what was sent."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from originlock.alerts.policy import ALERT_TYPES, ORIGIN_EXPOSED
from originlock.api.deps import Caller, StoreDep, ZonesPage
from originlock.api.envelope import ok, result_info
from originlock.api.routes.alerting import BASE, _account
from originlock.store import alerts
from originlock.store.db import to_iso
from originlock.store.errors import Invalid

router = APIRouter()

_ZONES_FILTER = ["zones"]
#: Grouped by product as Cloudflare's ``available_alerts`` is; every one of them is raised by this deployment.
AVAILABLE: dict[str, list[dict[str, Any]]] = {
    "SSL/TLS": [
        {
            "type": ALERT_TYPES["zone"],
            "display_name": "Zone-level Authenticated Origin Pulls Certificate Expiration Alert",
            "description": "Sent 30 days and 14 days before a zone-level AOP certificate expires, and at expiry.",
            "filter_options": _ZONES_FILTER,
        },
        {
            "type": ALERT_TYPES["hostname"],
            "display_name": "Hostname-level Authenticated Origin Pulls Certificate Expiration Alert",
            "description": "Sent 30 days and 14 days before a per-hostname AOP certificate expires, and at expiry.",
            "filter_options": _ZONES_FILTER,
        },
        {
            "type": ALERT_TYPES["custom"],
            "display_name": "Custom SSL Certificate Event",
            "description": "Sent 30 days and 14 days before an uploaded edge certificate expires, and at expiry.",
            "filter_options": _ZONES_FILTER,
        },
    ],
    "Origin Monitoring": [
        {
            "type": ORIGIN_EXPOSED,
            "display_name": "Origin exposed (originlock)",
            "description": "The origin exposure monitor found an origin answering without the edge's certificate.",
            "filter_options": _ZONES_FILTER,
        }
    ],
}


def _moment(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        return to_iso(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise Invalid(f"{what} must be an RFC 3339 date or time", 1004) from None


@router.get(BASE + "/available_alerts")
def available_alerts(account_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:read")
    return ok(AVAILABLE)


@router.get(BASE + "/history")
def history(
    account_id: str,
    request: Request,
    token: Caller,
    store: StoreDep,
    page: ZonesPage,
    since: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> JSONResponse:
    _account(request, store, token, account_id, "alerting:read")
    with store.read() as conn:
        rows = alerts.sent_history(conn, account_id, _moment(since, "since"), _moment(before, "before"))
    items = []
    for row in rows:
        payload = json.loads(row.payload)
        hooks = [h["id"] for h in json.loads(row.mechanisms).get("webhooks") or []]
        items.append(
            {
                "id": row.id,
                "name": row.name,
                "policy_id": row.policy_id,
                "alert_type": row.alert_type,
                "alert_body": json.dumps(payload),
                "description": payload.get("text", ""),
                "mechanism": ",".join(hooks),
                "mechanism_type": "webhook",
                "sent": row.sent_at,
            }
        )
    chunk = items[page.offset : page.offset + page.per_page]
    return ok(chunk, result_info(page.page, page.per_page, len(chunk), len(items)))
