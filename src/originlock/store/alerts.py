"""Notification policies and webhook destinations (Cloudflare's alerting v3), and the delivery queue."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, delete, insert, select, update

from originlock.alerts.policy import ALERT_TYPES, ORIGIN_EXPOSED, PolicyView
from originlock.store import schema
from originlock.store.db import insert_or_conflict, now_iso, to_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.sealing import KeySealer
from originlock.wire_syntax import check_field_value

__all__ = [
    "claim_delivery",
    "create_policy",
    "create_webhook",
    "delete_policy",
    "delete_webhook",
    "enqueue",
    "get_policy",
    "get_webhook",
    "list_policies",
    "list_webhooks",
    "policy_views",
    "sent_history",
    "update_policy",
    "update_webhook",
    "webhook_secret",
]

SUPPORTED_ALERT_TYPES = (*ALERT_TYPES.values(), ORIGIN_EXPOSED)


def _check_policy(conn: Connection, account_id: str, alert_type: str, mechanisms: dict[str, Any]) -> None:
    if alert_type not in SUPPORTED_ALERT_TYPES:
        raise Invalid(
            f"alert_type {alert_type!r} is not supported; use one of {', '.join(SUPPORTED_ALERT_TYPES)}", 17001
        )
    for hook in mechanisms.get("webhooks") or []:
        hook_id = hook.get("id") if isinstance(hook, dict) else None
        if not hook_id:
            raise Invalid("mechanisms.webhooks items need an id", 17001)
        get_webhook(conn, account_id, str(hook_id))
    unsupported = sorted(set(mechanisms) - {"webhooks", "email", "pagerduty"})
    if unsupported:
        raise Invalid(f"mechanisms {unsupported} are not supported", 17001)


def create_policy(
    conn: Connection,
    account_id: str,
    *,
    name: str,
    alert_type: str,
    enabled: bool,
    mechanisms: dict[str, Any],
    filters: dict[str, Any],
    description: str,
) -> str:
    _check_policy(conn, account_id, alert_type, mechanisms)
    policy_id = str(uuid.uuid4())
    stamp = now_iso()
    conn.execute(
        insert(schema.alert_policies).values(
            id=policy_id,
            account_id=account_id,
            name=name,
            description=description,
            alert_type=alert_type,
            enabled=enabled,
            mechanisms=json.dumps(mechanisms),
            filters=json.dumps(filters),
            created=stamp,
            modified=stamp,
        )
    )
    return policy_id


def update_policy(conn: Connection, account_id: str, policy_id: str, changes: dict[str, Any]) -> str:
    current = get_policy(conn, account_id, policy_id)
    mechanisms = changes.get("mechanisms", json.loads(current.mechanisms))
    alert_type = changes.get("alert_type", current.alert_type)
    _check_policy(conn, account_id, alert_type, mechanisms)
    values: dict[str, Any] = {"modified": now_iso(), "alert_type": alert_type, "mechanisms": json.dumps(mechanisms)}
    for key in ("name", "description", "enabled"):
        if key in changes:
            values[key] = changes[key]
    if "filters" in changes:
        values["filters"] = json.dumps(changes["filters"])
    conn.execute(update(schema.alert_policies).where(schema.alert_policies.c.id == policy_id).values(**values))
    return policy_id


def get_policy(conn: Connection, account_id: str, policy_id: str) -> Row[Any]:
    row = conn.execute(
        select(schema.alert_policies).where(
            schema.alert_policies.c.id == policy_id, schema.alert_policies.c.account_id == account_id
        )
    ).first()
    if row is None:
        raise NotFound(f"notification policy {policy_id} not found", 17404)
    return row


def list_policies(conn: Connection, account_id: str) -> list[Row[Any]]:
    table = schema.alert_policies
    return list(conn.execute(select(table).where(table.c.account_id == account_id).order_by(table.c.created)))


def delete_policy(conn: Connection, account_id: str, policy_id: str) -> None:
    get_policy(conn, account_id, policy_id)
    conn.execute(delete(schema.alert_policies).where(schema.alert_policies.c.id == policy_id))


def policy_views(conn: Connection) -> list[PolicyView]:
    views = []
    for row in conn.execute(select(schema.alert_policies)):
        zones = json.loads(row.filters).get("zones")
        views.append(PolicyView(row.id, row.name, row.alert_type, row.enabled, frozenset(zones) if zones else None))
    return views


def create_webhook(
    conn: Connection, sealer: KeySealer, account_id: str, *, name: str, url: str, secret: str | None
) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("url must be an http:// or https:// URL", 17001)
    # The URL becomes a request line and the secret a header (cf-webhook-auth): refuse CR/LF/controls here.
    try:
        check_field_value(url, "url", max_length=2048)
        if secret is not None:
            check_field_value(secret, "secret", max_length=1024)
    except ValueError as exc:
        raise Invalid(str(exc), 17001) from None
    if " " in url or "\t" in url:
        raise Invalid("url must not contain spaces (percent-encode them)", 17001)
    webhook_id = str(uuid.uuid4())
    conn.execute(
        insert(schema.alert_webhooks).values(
            id=webhook_id,
            account_id=account_id,
            name=name,
            url=url,
            secret_sealed=sealer.seal(secret.encode(), f"webhook:{webhook_id}") if secret else None,
            created_at=now_iso(),
            last_success=None,
            last_failure=None,
        )
    )
    return webhook_id


def get_webhook(conn: Connection, account_id: str, webhook_id: str) -> Row[Any]:
    table = schema.alert_webhooks
    row = conn.execute(select(table).where(table.c.id == webhook_id, table.c.account_id == account_id)).first()
    if row is None:
        raise NotFound(f"webhook destination {webhook_id} not found", 17404)
    return row


def list_webhooks(conn: Connection, account_id: str) -> list[Row[Any]]:
    table = schema.alert_webhooks
    return list(conn.execute(select(table).where(table.c.account_id == account_id).order_by(table.c.created_at)))


def update_webhook(
    conn: Connection, sealer: KeySealer, account_id: str, webhook_id: str, *, name: str, url: str, secret: str | None
) -> None:
    """PUT: name and URL replaced; the secret only when one is sent (it is write-only, so absent means keep)."""
    get_webhook(conn, account_id, webhook_id)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("url must be an http:// or https:// URL", 17001)
    values: dict[str, Any] = {"name": name, "url": url}
    if secret is not None:
        values["secret_sealed"] = sealer.seal(secret.encode(), f"webhook:{webhook_id}") if secret else None
    conn.execute(update(schema.alert_webhooks).where(schema.alert_webhooks.c.id == webhook_id).values(**values))


def sent_history(conn: Connection, account_id: str, since: str | None, before: str | None) -> list[Row[Any]]:
    """Delivered notifications of the account's policies, newest first (Cloudflare's alert history)."""
    d, p = schema.alert_deliveries, schema.alert_policies
    query = (
        select(d.c.id, d.c.payload, d.c.sent_at, p.c.id.label("policy_id"), p.c.name, p.c.alert_type, p.c.mechanisms)
        .join(p, p.c.id == d.c.policy_id)
        .where(p.c.account_id == account_id, d.c.status == "sent")
    )
    if since is not None:
        query = query.where(d.c.sent_at >= since)
    if before is not None:
        query = query.where(d.c.sent_at < before)
    return list(conn.execute(query.order_by(d.c.sent_at.desc(), d.c.id)))


def delete_webhook(conn: Connection, account_id: str, webhook_id: str) -> None:
    get_webhook(conn, account_id, webhook_id)
    conn.execute(delete(schema.alert_webhooks).where(schema.alert_webhooks.c.id == webhook_id))


def webhook_secret(sealer: KeySealer, row: Row[Any]) -> str | None:
    return sealer.open(bytes(row.secret_sealed), f"webhook:{row.id}").decode() if row.secret_sealed else None


def enqueue(conn: Connection, items: list[tuple[str, str]], payloads: dict[str, dict[str, Any]], now: datetime) -> int:
    """Queue (delivery key, policy id) items not queued before; returns how many were new.

    The key is the primary key and each insert yields to an existing row (``ON CONFLICT DO NOTHING``):
    two nodes queueing the same alert at the same instant make one row, and neither transaction fails.
    """
    table = schema.alert_deliveries
    new = 0
    for key, policy_id in items:
        stmt = (
            insert_or_conflict(conn, table)
            .values(
                id=key,
                policy_id=policy_id,
                payload=json.dumps(payloads[key]),
                status="pending",
                attempts=0,
                next_attempt_at=to_iso(now),
                sent_at=None,
                last_error=None,
            )
            .on_conflict_do_nothing(index_elements=[table.c.id])
        )
        # RETURNING yields a row only for an insert that happened.
        new += conn.execute(stmt.returning(table.c.id)).first() is not None
    return new


def claim_delivery(conn: Connection, key: str, seen_next_attempt_at: str, until: datetime) -> bool:
    """Take a pending delivery for one attempt: push its next attempt to ``until`` if nobody did since it was
    read with ``seen_next_attempt_at``. Returns whether the caller may send it.

    A compare-and-set on the row, so two nodes that both read the item as due never both send it; a node
    that dies after claiming leaves the item to be retried at ``until``.
    """
    table = schema.alert_deliveries
    result = conn.execute(
        update(table)
        .where(table.c.id == key, table.c.status == "pending", table.c.next_attempt_at == seen_next_attempt_at)
        .values(next_attempt_at=to_iso(until))
    )
    return result.rowcount == 1
