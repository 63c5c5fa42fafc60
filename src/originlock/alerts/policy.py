"""Which expiry notifications are due, as plain values: no clock, no I/O.

Cloudflare's documentation asks for alerts "30 days and 14 days before an AOP certificate expires"; we
add a last one at expiry. Each (policy, certificate, threshold) is sent once. A certificate found
already past several thresholds gets only the most urgent one, not a burst of stale warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "ALERT_TYPES",
    "ORIGIN_EXPOSED",
    "THRESHOLDS_DAYS",
    "CertExpiry",
    "DueAlert",
    "PolicyView",
    "backoff",
    "days_left",
    "due_alerts",
]

#: Days before expiry at which a notification is sent.
THRESHOLDS_DAYS = (30, 14, 0)
#: Cloudflare's alert types for AOP certificate expiry, by the kind of certificate they watch.
ALERT_TYPES = {
    "zone": "zone_aop_custom_certificate_expiration_type",
    "hostname": "hostname_aop_custom_certificate_expiration_type",
    # Uploaded visitor-facing certificates (custom_certificates): Cloudflare's custom SSL event alert.
    "custom": "custom_ssl_certificate_event_type",
}
#: originlock extension: the exposure monitor saw a locked origin become open.
ORIGIN_EXPOSED = "originlock_origin_exposed"
#: Retry delays grow from one minute to at most six hours.
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=6)


@dataclass(frozen=True)
class CertExpiry:
    cert_id: str
    kind: str
    zone_id: str
    zone_name: str
    serial_number: str
    expires_on: datetime


@dataclass(frozen=True)
class PolicyView:
    id: str
    name: str
    alert_type: str
    enabled: bool
    #: Zone ids the policy is limited to (``filters.zones``); None for every zone.
    zones: frozenset[str] | None


@dataclass(frozen=True)
class DueAlert:
    #: Stable identity: the same alert is never queued twice.
    key: str
    policy_id: str
    threshold_days: int
    cert: CertExpiry


def days_left(cert: CertExpiry, now: datetime) -> float:
    return (cert.expires_on - now).total_seconds() / 86400


def _threshold(left: float) -> int | None:
    crossed = [t for t in THRESHOLDS_DAYS if left <= t]
    return min(crossed) if crossed else None


def due_alerts(certs: Iterable[CertExpiry], policies: Sequence[PolicyView], now: datetime) -> list[DueAlert]:
    """Alerts whose threshold has been reached, one per (policy, certificate): the most urgent threshold."""
    due: list[DueAlert] = []
    for cert in certs:
        threshold = _threshold(days_left(cert, now))
        if threshold is None:
            continue
        for policy in policies:
            if not policy.enabled or policy.alert_type != ALERT_TYPES.get(cert.kind):
                continue
            if policy.zones is not None and cert.zone_id not in policy.zones:
                continue
            due.append(DueAlert(f"{policy.id}:{cert.cert_id}:{threshold}", policy.id, threshold, cert))
    return due


def backoff(attempts: int) -> timedelta:
    """Delay before retry number ``attempts`` (1-based): 1, 2, 4, ... minutes, at most six hours."""
    delay: timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return delay if delay < BACKOFF_MAX else BACKOFF_MAX
