"""Origin exposure events delivered like certificate alerts: queued per matching notification policy.

A policy with ``alert_type`` ``originlock_origin_exposed`` (an originlock extension) gets a webhook POST when
the exposure monitor sees a locked origin become open; the expiry-alert job delivers the queue with the
same retries and backoff. The event is also logged, so nothing depends on a policy existing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from originlock.alerts.policy import ORIGIN_EXPOSED
from originlock.server.monitor_notify import LogNotifier
from originlock.store import schema
from originlock.store.alerts import enqueue, policy_views
from originlock.store.db import Store

__all__ = ["WebhookQueueNotifier"]


class WebhookQueueNotifier:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._log = LogNotifier()

    def __repr__(self) -> str:
        return "WebhookQueueNotifier()"

    def notify(self, event: dict[str, Any]) -> None:
        self._log.notify(event)
        now = datetime.now(UTC)
        with self._store.read() as conn:
            policies = [p for p in policy_views(conn) if p.enabled and p.alert_type == ORIGIN_EXPOSED]
            names = {r.id: (r.name, r.account_id) for r in conn.execute(select(schema.alert_policies))}
        matching = [p for p in policies if p.zones is None or event["zone_id"] in p.zones]
        if not matching:
            return
        items: list[tuple[str, str]] = []
        payloads: dict[str, dict[str, Any]] = {}
        for policy in matching:
            key = f"{policy.id}:exposed:{event['hostname']}:{event['checked_at']}"
            name, account_id = names[policy.id]
            items.append((key, policy.id))
            payloads[key] = {
                "name": name,
                "text": event["text"],
                "data": event,
                "ts": int(now.timestamp()),
                "account_id": account_id,
                "policy_id": policy.id,
                "policy_name": name,
                "alert_type": ORIGIN_EXPOSED,
                "alert_correlation_id": key,
            }
        with self._store.write() as conn:
            enqueue(conn, items, payloads, now)
