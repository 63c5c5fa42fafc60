"""The expiry-alert job: find certificates nearing expiry, queue notifications, deliver them to webhooks.

Each tick reads the store, decides with ``alerts/policy.py`` (pure), writes only when something is new,
and sends webhooks outside any transaction. Deliveries are retried with exponential backoff; every
threshold crossing is logged and every certificate's days-to-expiry is a Prometheus gauge, whether or not
a policy exists.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import select, update

from originlock.alerts.policy import CertExpiry, DueAlert, backoff, days_left, due_alerts
from originlock.store import schema
from originlock.store.alerts import enqueue, policy_views, webhook_secret
from originlock.store.db import Store, from_iso, to_iso

__all__ = ["DAYS_TO_EXPIRY", "ExpiryAlerts", "post_json"]

log = logging.getLogger("originlock.alerts")

DAYS_TO_EXPIRY = Gauge(
    "originlock_certificate_days_to_expiry",
    "Days until an AOP client certificate expires (negative once expired).",
    ["zone", "kind", "certificate_id"],
)
#: How often the job looks; expiry thresholds are days apart, so a minute is plenty.
INTERVAL_SECONDS = 60.0
WEBHOOK_TIMEOUT_SECONDS = 10.0

Sender = Callable[[str, dict[str, Any], str | None], None]


def post_json(url: str, payload: dict[str, Any], secret: str | None) -> None:
    """POST ``payload``; raises on a network error or a non-2xx answer. ``cf-webhook-auth`` as Cloudflare sends it."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "originlock-alerts")
    if secret:
        request.add_header("cf-webhook-auth", secret)
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered {response.status}")


@dataclass(frozen=True)
class _Pending:
    key: str
    policy_id: str
    payload: dict[str, Any]
    attempts: int
    targets: list[tuple[str, str | None]]


def _payload(alert: DueAlert, policy_name: str, alert_type: str, account_id: str, now: datetime) -> dict[str, Any]:
    cert = alert.cert
    left = days_left(cert, now)
    level = "Zone-level" if cert.kind == "zone" else "Hostname-level"
    when = "has expired" if left <= 0 else f"expires in {int(left)} days"
    return {
        "name": policy_name,
        "text": f"{level} Authenticated Origin Pulls certificate {cert.serial_number} for {cert.zone_name} {when} "
        f"(expires_on {to_iso(cert.expires_on)}).",
        "data": {
            "zone_id": cert.zone_id,
            "zone_name": cert.zone_name,
            "certificate_id": cert.cert_id,
            "serial_number": cert.serial_number,
            "expires_on": to_iso(cert.expires_on),
            "days_left": int(left),
            "threshold_days": alert.threshold_days,
            "kind": cert.kind,
        },
        "ts": int(now.timestamp()),
        "account_id": account_id,
        "policy_id": alert.policy_id,
        "policy_name": policy_name,
        "alert_type": alert_type,
        "alert_correlation_id": alert.key,
    }


class ExpiryAlerts:
    def __init__(
        self,
        store: Store,
        *,
        interval: float = INTERVAL_SECONDS,
        send: Sender = post_json,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._interval = interval
        self._send = send
        self._clock = clock
        self._gauge_labels: set[tuple[str, str, str]] = set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception as exc:  # keep alerting alive through a store hiccup; say so
                log.warning("expiry alert tick failed: %s", type(exc).__name__)
            await asyncio.sleep(self._interval)

    def tick(self) -> int:
        """One pass; returns how many deliveries succeeded."""
        now = self._clock()
        self._queue_due(now)
        return sum(self._deliver(item, now) for item in self._pending(now))

    def _queue_due(self, now: datetime) -> None:
        with self._store.read() as conn:
            zones = {r.id: r for r in conn.execute(select(schema.zones))}
            certs = [
                CertExpiry(r.id, r.kind, r.zone_id, zones[r.zone_id].name, r.serial_number, from_iso(r.expires_on))
                for r in conn.execute(select(schema.aop_certs))
            ]
            policies = policy_views(conn)
            known = {r.id for r in conn.execute(select(schema.alert_deliveries.c.id))}
            policy_rows = {r.id: r for r in conn.execute(select(schema.alert_policies))}
        self._update_gauge(certs, now)
        due = [a for a in due_alerts(certs, policies, now) if a.key not in known]
        if not due:
            return
        payloads = {}
        for alert in due:
            row = policy_rows[alert.policy_id]
            payloads[alert.key] = _payload(alert, row.name, row.alert_type, row.account_id, now)
            log.warning("alert queued: %s", payloads[alert.key]["text"])
        with self._store.write() as conn:
            enqueue(conn, [(a.key, a.policy_id) for a in due], payloads, now)

    def _update_gauge(self, certs: list[CertExpiry], now: datetime) -> None:
        labels = set()
        for cert in certs:
            key = (cert.zone_name, cert.kind, cert.cert_id)
            labels.add(key)
            DAYS_TO_EXPIRY.labels(*key).set(round(days_left(cert, now), 3))
        for stale in self._gauge_labels - labels:
            DAYS_TO_EXPIRY.remove(*stale)
        self._gauge_labels = labels

    def _pending(self, now: datetime) -> list[_Pending]:
        d, p, w = schema.alert_deliveries, schema.alert_policies, schema.alert_webhooks
        items = []
        with self._store.read() as conn:
            rows = conn.execute(select(d).where(d.c.status == "pending", d.c.next_attempt_at <= to_iso(now)))
            for row in rows:
                policy = conn.execute(select(p).where(p.c.id == row.policy_id)).first()
                if policy is None:
                    continue
                hook_ids = [h["id"] for h in json.loads(policy.mechanisms).get("webhooks") or []]
                hooks = list(conn.execute(select(w).where(w.c.id.in_(hook_ids)))) if hook_ids else []
                targets = [(h.url, webhook_secret(self._store.sealer, h)) for h in hooks]
                items.append(_Pending(row.id, row.policy_id, json.loads(row.payload), row.attempts, targets))
        return items

    def _deliver(self, item: _Pending, now: datetime) -> int:
        error = None
        for url, secret in item.targets:
            try:
                self._send(url, item.payload, secret)
            except (OSError, urllib.error.URLError) as exc:
                error = f"{url}: {getattr(exc, 'reason', None) or exc}"
        d = schema.alert_deliveries
        attempts = item.attempts + 1
        with self._store.write() as conn:
            if error is None:
                conn.execute(
                    update(d)
                    .where(d.c.id == item.key)
                    .values(status="sent", attempts=attempts, sent_at=to_iso(now), last_error=None)
                )
                log.info("alert delivered: %s", item.key)
                return 1
            retry_at = now + backoff(attempts)
            conn.execute(
                update(d)
                .where(d.c.id == item.key)
                .values(attempts=attempts, next_attempt_at=to_iso(retry_at), last_error=error[:500])
            )
        log.warning("alert delivery failed (attempt %d, retry at %s): %s", attempts, to_iso(retry_at), error)
        return 0
