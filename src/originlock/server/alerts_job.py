"""The expiry-alert job: find certificates nearing expiry, queue notifications, deliver them to webhooks.

Each tick reads the store, decides with ``alerts/policy.py`` (pure), writes only when something is new,
and sends webhooks outside any transaction. Deliveries are retried with exponential backoff; every
threshold crossing is logged and every certificate's days-to-expiry is a Prometheus gauge, whether or not
a policy exists.

In a fleet every node runs this job, but only the node holding the ``expiry-alerts`` lease
(``server/leadership.py``) queues and delivers; every node keeps its own gauge up to date, since each
node's ``/metrics`` is scraped on its own. Each delivery is also claimed in the store just before it is
sent, so a node whose lease ran out in the middle of a long tick and the node that took over never send
the same item at the same time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import select, update

from originlock.alerts.policy import CertExpiry, DueAlert, backoff, days_left, due_alerts
from originlock.server.leadership import JobLease
from originlock.store import schema
from originlock.store.alerts import claim_delivery, enqueue, policy_views, webhook_secret
from originlock.store.db import Store, from_iso, to_iso

__all__ = ["DAYS_TO_EXPIRY", "JOB", "ExpiryAlerts", "post_json"]

log = logging.getLogger("originlock.alerts")

DAYS_TO_EXPIRY = Gauge(
    "originlock_certificate_days_to_expiry",
    "Days until an AOP client certificate or a custom edge certificate expires (negative once expired).",
    ["zone", "kind", "certificate_id"],
)
#: How often the job looks; expiry thresholds are days apart, so a minute is plenty.
INTERVAL_SECONDS = 60.0
WEBHOOK_TIMEOUT_SECONDS = 10.0
#: How long a claimed delivery is reserved for the node sending it: far longer than one attempt takes (a
#: few webhooks at WEBHOOK_TIMEOUT_SECONDS each). A node dying mid-send leaves the item due again after it.
CLAIM = timedelta(minutes=5)
#: The lease's name in ``job_leases``.
JOB = "expiry-alerts"

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
    #: ``next_attempt_at`` as read: the claim succeeds only if nobody changed it since.
    next_attempt_at: str


def _payload(alert: DueAlert, policy_name: str, alert_type: str, account_id: str, now: datetime) -> dict[str, Any]:
    cert = alert.cert
    left = days_left(cert, now)
    what = {
        "zone": "Zone-level Authenticated Origin Pulls certificate",
        "hostname": "Hostname-level Authenticated Origin Pulls certificate",
        "custom": "Custom edge certificate",
    }[cert.kind]
    when = "has expired" if left <= 0 else f"expires in {int(left)} days"
    return {
        "name": policy_name,
        "text": f"{what} {cert.serial_number} for {cert.zone_name} {when} (expires_on {to_iso(cert.expires_on)}).",
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
    """Queues due expiry alerts and delivers the queue (origin exposure events included) every ``interval``.

    Args:
        store: where certificates, policies and the delivery queue live.
        interval: seconds between ticks of :meth:`run`.
        send: posts one payload to one webhook (tests record instead).
        clock: the wall clock; thresholds, backoff, claims and the lease all follow it.
        lease: in a fleet, this node's ``expiry-alerts`` lease: the job queues and delivers only while it
            holds it. None: this process is the only one running the job (tests, embedding).
    """

    def __init__(
        self,
        store: Store,
        *,
        interval: float = INTERVAL_SECONDS,
        send: Sender = post_json,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: JobLease | None = None,
    ) -> None:
        self._store = store
        self._interval = interval
        self._send = send
        self._clock = clock
        self._lease = lease
        self._gauge_labels: set[tuple[str, str, str]] = set()

    def __repr__(self) -> str:
        return f"ExpiryAlerts(interval={self._interval:g}, lease={self._lease!r})"

    async def run(self) -> None:
        try:
            while True:
                try:
                    await asyncio.to_thread(self.tick)
                except Exception as exc:  # keep alerting alive through a store hiccup; say so
                    log.warning("expiry alert tick failed: %s", type(exc).__name__)
                await asyncio.sleep(self._interval)
        finally:
            # Shutdown: hand the job to another node now rather than when the lease runs out. Blocking,
            # but one short statement, and the loop has nothing else to do for this task any more.
            if self._lease is not None:
                self._lease.release()

    def tick(self) -> int:
        """One pass; returns how many deliveries succeeded (0 on a node that does not hold the lease)."""
        now = self._clock()
        due, payloads = self._find_due(now)
        if self._lease is not None and not self._lease.hold(now):
            return 0
        if due:
            for key in payloads:
                log.warning("alert queued: %s", payloads[key]["text"])
            with self._store.write() as conn:
                enqueue(conn, [(a.key, a.policy_id) for a in due], payloads, now)
        return sum(self._deliver(item, now) for item in self._pending(now))

    def _find_due(self, now: datetime) -> tuple[list[DueAlert], dict[str, dict[str, Any]]]:
        """Alerts due and not queued yet, with their payloads; updates the gauge on the way (every node)."""
        with self._store.read() as conn:
            zones = {r.id: r for r in conn.execute(select(schema.zones))}
            certs = [
                CertExpiry(r.id, r.kind, r.zone_id, zones[r.zone_id].name, r.serial_number, from_iso(r.expires_on))
                for r in conn.execute(select(schema.aop_certs))
            ]
            custom = schema.custom_certificates
            certs += [
                CertExpiry(r.id, "custom", r.zone_id, zones[r.zone_id].name, r.serial_number, from_iso(r.expires_on))
                for r in conn.execute(
                    select(custom.c.id, custom.c.zone_id, custom.c.serial_number, custom.c.expires_on)
                )
            ]
            policies = policy_views(conn)
            known = {r.id for r in conn.execute(select(schema.alert_deliveries.c.id))}
            policy_rows = {r.id: r for r in conn.execute(select(schema.alert_policies))}
        self._update_gauge(certs, now)
        due = [a for a in due_alerts(certs, policies, now) if a.key not in known]
        payloads = {}
        for alert in due:
            row = policy_rows[alert.policy_id]
            payloads[alert.key] = _payload(alert, row.name, row.alert_type, row.account_id, now)
        return due, payloads

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
                items.append(
                    _Pending(row.id, row.policy_id, json.loads(row.payload), row.attempts, targets, row.next_attempt_at)
                )
        return items

    def _deliver(self, item: _Pending, now: datetime) -> int:
        with self._store.status_write() as conn:
            if not claim_delivery(conn, item.key, item.next_attempt_at, now + CLAIM):
                return 0  # another node is sending it (or just did)
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
