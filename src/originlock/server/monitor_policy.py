"""The origin exposure monitor's policy, as plain functions over plain values (no I/O, no clock).

Theory of operation. Every tick, the monitor (``monitor.py``) asks :func:`plan_targets` which proxied
hostnames of the current snapshot are worth checking, and :func:`due_targets` which of those are due:
never checked, changed since the last check (another origin address, another client certificate, another
SSL mode), or last checked at least ``interval`` seconds ago. It checks them one at a time, spaced by
:func:`check_spacing`, and turns each verdict into what the store records with :func:`next_record`,
which also says whether to notify: an origin that was ``LOCKED`` and is now ``OPEN`` (an ``UNREACHABLE``
spell in between does not hide the change, because ``previous_verdict`` only moves on a change).

What is checked, and why:

- SSL modes ``full``, ``strict`` and ``origin_pull`` only: with ``off`` and ``flexible`` the edge pulls
  over plain HTTP, where client certificates cannot protect anything.
- Exact hostnames only: a ``*.`` record has no name to send as SNI and ``Host``.
- Zones whose ``origin_exposure_monitor`` setting is ``off`` are skipped (and their records dropped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from originlock.alerts.policy import ORIGIN_EXPOSED
from originlock.snapshot.model import ClientCert, Snapshot, SslMode

__all__ = [
    "ALERT_TYPE",
    "DEFAULT_CHECKS_PER_MINUTE",
    "DEFAULT_INTERVAL",
    "MONITORED_MODES",
    "SETTING_ID",
    "CheckTarget",
    "MonitorConfig",
    "PreviousCheck",
    "Recorded",
    "TargetKey",
    "check_spacing",
    "due_targets",
    "exposure_event",
    "next_record",
    "plan_targets",
    "was_locked",
]

#: Seconds between two checks of one origin. Hourly: an origin's TLS configuration changes on deploys, not
#: by the minute, and every check costs the origin three TLS handshakes (UptimeRobot's free tier checks
#: every 5 min, Cloudflare's health checks every 60 s; neither opens three mTLS handshakes each time).
DEFAULT_INTERVAL = 3600.0
#: Rate limit across all origins. 30 a minute = one check every 2 s: at most 90 handshakes a minute from
#: this process, and 1,800 origins an hour, enough for a deployment of this size.
DEFAULT_CHECKS_PER_MINUTE = 30
#: Seconds per probe step (connect, handshake, response); shorter than the CLI's 10 s so one dead origin
#: does not hold the queue for long (3 probes x 3 steps).
DEFAULT_PROBE_TIMEOUT = 5.0
#: The zone setting that opts a zone out (``off``); an originlock extension, default ``on``.
SETTING_ID = "origin_exposure_monitor"
#: ``alert_type`` of the notification; Cloudflare names alert types in snake case, ours is prefixed.
ALERT_TYPE = ORIGIN_EXPOSED
#: SSL modes in which the edge pulls over TLS and so can present a client certificate (spec §6).
MONITORED_MODES = frozenset({SslMode.FULL, SslMode.STRICT, SslMode.ORIGIN_PULL})

TargetKey = tuple[str, str]
"""``(zone_id, hostname)``: one row of ``origin_checks``."""


@dataclass(frozen=True)
class MonitorConfig:
    """How often and how fast the monitor checks. Validated when built."""

    #: Seconds between two checks of the same origin.
    interval: float = DEFAULT_INTERVAL
    #: At most this many checks start in any minute (they also never overlap).
    checks_per_minute: int = DEFAULT_CHECKS_PER_MINUTE
    #: The origin port of TLS pulls: the edge's ``--origin-https-port``.
    origin_https_port: int = 443
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError("the monitor interval must be positive (0 means: do not start the monitor)")
        if self.checks_per_minute < 1:
            raise ValueError("checks_per_minute must be at least 1")
        if not 0 < self.origin_https_port < 65536:
            raise ValueError("origin_https_port must be a TCP port")
        if self.probe_timeout <= 0:
            raise ValueError("probe_timeout must be positive")


@dataclass(frozen=True)
class CheckTarget:
    """One proxied hostname to check, with what the edge would use to reach it."""

    zone_id: str
    zone_name: str
    hostname: str
    #: The DNS record's content: an address or a name.
    origin: str
    port: int
    ssl_mode: SslMode
    #: What the edge presents (``None``: no certificate). Holds the key in memory, never shown in ``repr``.
    client_cert: ClientCert | None
    #: Set when a certificate was chosen but cannot be used (the edge answers 525 for this hostname).
    client_cert_error: str | None = None

    @property
    def key(self) -> TargetKey:
        return (self.zone_id, self.hostname)

    @property
    def url(self) -> str:
        host = f"[{self.origin}]" if ":" in self.origin else self.origin
        return f"https://{host}:{self.port}/"

    @property
    def origin_label(self) -> str:
        """``origin:port`` as recorded and shown (the ``origin`` column)."""
        host = f"[{self.origin}]" if ":" in self.origin else self.origin
        return f"{host}:{self.port}"

    @property
    def signature(self) -> str:
        """Changes when anything that can change the verdict changes, so the target is re-checked at once."""
        cert = self.client_cert.fingerprint if self.client_cert is not None else "-"
        return f"{self.origin_label}|{self.ssl_mode.value}|{cert}|{self.client_cert_error or ''}"


def plan_targets(snapshot: Snapshot, *, opted_out: Iterable[str], port: int) -> list[CheckTarget]:
    """Every hostname of ``snapshot`` to monitor, sorted by zone name then hostname."""
    skip = frozenset(opted_out)
    targets = [
        CheckTarget(
            zone_id=route.zone_id,
            zone_name=route.zone_name,
            hostname=route.hostname,
            origin=route.origin,
            port=port,
            ssl_mode=route.ssl_mode,
            client_cert=route.client_cert,
            client_cert_error=route.client_cert_error,
        )
        for route in snapshot.routes.values()
        if route.ssl_mode in MONITORED_MODES and not route.hostname.startswith("*.") and route.zone_id not in skip
    ]
    return sorted(targets, key=lambda t: (t.zone_name, t.hostname))


def due_targets(
    targets: Iterable[CheckTarget], last: Mapping[TargetKey, tuple[float, str]], now: float, interval: float
) -> list[CheckTarget]:
    """The targets to check now, never-checked and changed ones first, then the longest-waiting.

    Args:
        targets: from :func:`plan_targets`.
        last: per target, the monotonic time its last check started and its :attr:`~CheckTarget.signature`.
        now: the same monotonic clock.
        interval: seconds between two checks of an unchanged target.
    """
    due: list[tuple[float, CheckTarget]] = []
    for target in targets:
        seen = last.get(target.key)
        if seen is None or seen[1] != target.signature:
            due.append((float("-inf"), target))
        elif now - seen[0] >= interval:
            due.append((seen[0], target))
    return [target for _, target in sorted(due, key=lambda item: item[0])]


def check_spacing(checks_per_minute: int) -> float:
    """Seconds between the starts of two checks: N a minute, evenly spread, so no minute holds more than N."""
    return 60.0 / checks_per_minute


@dataclass(frozen=True)
class PreviousCheck:
    """What ``origin_checks`` held for a target before this check."""

    verdict: str
    previous_verdict: str | None
    changed_at: datetime | None


@dataclass(frozen=True)
class Recorded:
    """What to store after a check, and whether it is news."""

    verdict: str
    previous_verdict: str | None
    #: When the verdict last changed (the first check counts as a change).
    changed_at: datetime
    #: The verdict differs from the stored one (or there was none).
    changed: bool
    #: An origin that was locked is now open: log a warning and call the notifier.
    notify: bool


def was_locked(previous: PreviousCheck | None) -> bool:
    """``LOCKED``, or ``UNREACHABLE`` right after ``LOCKED`` (an outage does not reset what we knew)."""
    if previous is None:
        return False
    if previous.verdict == "LOCKED":
        return True
    return previous.verdict == "UNREACHABLE" and previous.previous_verdict == "LOCKED"


def next_record(previous: PreviousCheck | None, verdict: str, now: datetime) -> Recorded:
    """Fold a new ``verdict`` into what was stored: ``previous_verdict`` and ``changed_at`` move only on change."""
    notify = verdict == "OPEN" and was_locked(previous)
    if previous is None:
        return Recorded(verdict, None, now, changed=True, notify=notify)
    if previous.verdict == verdict:
        return Recorded(verdict, previous.previous_verdict, previous.changed_at or now, changed=False, notify=notify)
    return Recorded(verdict, previous.verdict, now, changed=True, notify=notify)


def exposure_event(
    target: CheckTarget, recorded: Recorded, reasons: Iterable[str], checked_at: datetime, *, was: str
) -> dict[str, Any]:
    """The notification for a locked origin that became open: plain JSON values, no key material.

    ``was`` is the last conclusive verdict (``LOCKED``), which ``recorded.previous_verdict`` may not be
    when an ``UNREACHABLE`` spell came in between.
    """
    return {
        "alert_type": ALERT_TYPE,
        "zone_id": target.zone_id,
        "zone_name": target.zone_name,
        "hostname": target.hostname,
        "origin": target.origin_label,
        "verdict": recorded.verdict,
        "previous_verdict": was,
        "reasons": list(reasons),
        "checked_at": checked_at.isoformat(),
        "text": f"origin {target.origin_label} of {target.hostname} was {was} and is now {recorded.verdict}: "
        "it accepts connections that did not come through the edge",
    }
