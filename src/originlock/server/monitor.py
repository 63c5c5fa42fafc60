"""The origin exposure monitor: keep checking that every proxied origin refuses everyone but the edge.

Theory of operation. ``originlock serve`` runs one :class:`OriginMonitor` task. Every ``tick`` it takes
the edge's current snapshot, asks the policy (``monitor_policy.py``) which hostnames are due, and checks
them **one at a time** (so never two checks of one origin at once), no more than ``checks_per_minute``
starting in any minute. A check is the origin kit's :func:`~originlock.originkit.check.check_origin`,
made directly to the origin with the client certificate the edge itself presents for that hostname
(taken from the snapshot; the key goes to OpenSSL through an anonymous in-memory file, never a disk).
Each verdict is stored in ``origin_checks``; an origin that was ``LOCKED`` and is now ``OPEN`` gets a
warning line and a call to the :class:`~originlock.server.monitor_notify.Notifier`.

In a fleet every node runs the monitor, but only the node holding the ``origin-monitor`` lease
(``server/leadership.py``) checks: it renews the lease at every look and before every check, and stops a
pass as soon as it finds the lease gone. A node that takes over checks every origin once at once (it has
no memory of when the others were last checked), as a restart does.

Resource handling: probes and notifications are blocking, so they run in daemon threads the monitor
waits for; cancelling the task (shutdown) does not wait for a probe in flight, which ends on its own
within its timeouts. Store calls run in the default executor.
Error handling: a failed check (the store is briefly unavailable, a key does not load) is logged by its
exception type and counted; the target is retried after ``interval``. Nothing is logged that could hold
key material.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from originlock.edge.snapshots import SnapshotSource
from originlock.originkit.check import check_origin
from originlock.originkit.memcert import KeyMaterialError
from originlock.originkit.report import CheckReport
from originlock.server.leadership import LEASE_PERIODS, JobLease
from originlock.server.monitor_notify import LogNotifier, Notifier
from originlock.server.monitor_options import add_monitor_arguments
from originlock.server.monitor_policy import (
    CheckTarget,
    MonitorConfig,
    PreviousCheck,
    Recorded,
    TargetKey,
    check_spacing,
    due_targets,
    exposure_event,
    next_record,
    plan_targets,
)
from originlock.snapshot.model import Snapshot
from originlock.store.compile import compile_snapshot
from originlock.store.db import Store
from originlock.store.origin_checks import (
    OriginCheck,
    delete_checks,
    get_check,
    list_checks,
    monitor_opted_out_zones,
    put_check,
    status_write,
)

__all__ = [
    "JOB",
    "MonitorStatistics",
    "OriginMonitor",
    "add_monitor_arguments",
    "lease_ttl",
    "start_origin_monitor",
    "stop_origin_monitor",
]

log = logging.getLogger("originlock.monitor")
T = TypeVar("T")

#: Longest wait between two looks at the snapshot: a new proxied hostname is checked within this long.
MAX_TICK = 30.0
#: The lease's name in ``job_leases``.
JOB = "origin-monitor"
#: Steps of one check at most: three probes of three steps (connect, handshake, response), each bounded
#: by ``probe_timeout``.
_STEPS_PER_CHECK = 9

CheckFn = Callable[..., CheckReport]


@dataclass(frozen=True)
class MonitorStatistics:
    """A frozen view of the monitor's counters."""

    #: Checks that produced a verdict.
    checks: int
    #: Checks that failed before producing one (store error, unusable key material).
    failures: int
    #: LOCKED -> OPEN events handed to the notifier (delivered or not).
    notifications: int
    #: Hostnames monitored at the last look at the snapshot.
    targets: int


async def _in_daemon_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking ``fn`` in a daemon thread; cancelling the await leaves it to finish on its own."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            (future.set_result if ok else future.set_exception)(value)

    def work() -> None:
        try:
            outcome: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, name="originlock-origin-monitor", daemon=True).start()
    return await future


class OriginMonitor:
    """Checks due origins of the current snapshot, records verdicts, notifies on LOCKED -> OPEN.

    Args:
        store: where verdicts are recorded and the per-zone opt-out is read.
        snapshots: returns the current snapshot (called in a worker thread; may compile one).
        config: interval, rate limit, origin port, probe timeout.
        notifier: gets one event per LOCKED -> OPEN change; :class:`LogNotifier` by default.
        check: the checker (tests may wrap it); called as :func:`check_origin`.
        clock: wall clock for ``checked_at`` and the lease; monotonic: the clock for intervals and spacing.
        lease: in a fleet, this node's ``origin-monitor`` lease (see :func:`lease_ttl`): the monitor checks
            only while it holds it. None: this process is the only one running the monitor.
    """

    def __init__(
        self,
        store: Store,
        snapshots: Callable[[], Snapshot],
        config: MonitorConfig,
        *,
        notifier: Notifier | None = None,
        check: CheckFn = check_origin,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        lease: JobLease | None = None,
    ) -> None:
        self._store = store
        self._lease = lease
        self._snapshots = snapshots
        self.config = config
        self.notifier: Notifier = notifier if notifier is not None else LogNotifier()
        self._check = check
        self._clock = clock
        self._monotonic = monotonic
        self._last: dict[TargetKey, tuple[float, str]] = {}
        self._last_start: float | None = None
        self._checks = self._failures = self._notifications = self._targets = 0

    def __repr__(self) -> str:
        return f"OriginMonitor(interval={self.config.interval:g}, checks={self._checks})"

    def statistics(self) -> MonitorStatistics:
        return MonitorStatistics(self._checks, self._failures, self._notifications, self._targets)

    async def run(self) -> None:
        """Check due origins, sleep a tick, repeat; until cancelled."""
        tick = min(self.config.interval, MAX_TICK)
        try:
            while True:
                try:
                    await self.check_due()
                except Exception as exc:  # the store may be briefly unreachable; try again next tick
                    log.warning("origin exposure monitor: could not read the snapshot or store: %s", type(exc).__name__)
                await asyncio.sleep(tick)
        finally:
            # Shutdown: hand the job to another node now rather than when the lease runs out.
            if self._lease is not None:
                self._lease.release()

    async def check_due(self) -> int:
        """One pass: check every target that is due now, rate-limited. Returns how many checks ran
        (none on a node that does not hold the lease)."""
        if not await self._leading():
            return 0
        snapshot = await asyncio.to_thread(self._snapshots)
        opted_out = await asyncio.to_thread(self._read_opt_out)
        targets = plan_targets(snapshot, opted_out=opted_out, port=self.config.origin_https_port)
        self._targets = len(targets)
        await asyncio.to_thread(self._forget_stale, {t.key for t in targets})
        due = due_targets(targets, self._last, self._monotonic(), self.config.interval)
        done = 0
        for target in due:
            await self._wait_turn()
            # A pass can outlast a lease (many origins, rate-limited): renewing before each check keeps it,
            # and a node that lost it meanwhile leaves the rest to the new holder.
            if done and not await self._leading():
                break
            await self._check_one(target)
            done += 1
        return done

    async def _leading(self) -> bool:
        if self._lease is None:
            return True
        return await asyncio.to_thread(self._lease.hold, self._clock())

    def _read_opt_out(self) -> frozenset[str]:
        with self._store.read() as conn:
            return monitor_opted_out_zones(conn)

    def _forget_stale(self, keep: set[TargetKey]) -> None:
        """Drop records (and memory) of hostnames no longer monitored: deleted, opted out, not TLS any more."""
        for key in [k for k in self._last if k not in keep]:
            del self._last[key]
        with self._store.read() as conn:
            stale = [(c.zone_id, c.hostname) for c in list_checks(conn) if (c.zone_id, c.hostname) not in keep]
        if stale:
            with status_write(self._store) as conn:
                delete_checks(conn, stale)

    async def _wait_turn(self) -> None:
        if self._last_start is not None:
            delay = self._last_start + check_spacing(self.config.checks_per_minute) - self._monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        self._last_start = self._monotonic()

    async def _check_one(self, target: CheckTarget) -> None:
        # Remember the attempt first: a target that fails is retried after `interval`, not every tick.
        self._last[target.key] = (self._monotonic(), target.signature)
        try:
            report = await _in_daemon_thread(self._probe, target)
            checked_at = self._clock()
            recorded, was = await asyncio.to_thread(self._record, target, report, checked_at)
        except KeyMaterialError as exc:  # its message never contains the key
            self._failures += 1
            log.warning("origin exposure monitor: %s: %s", target.hostname, exc)
            return
        except Exception as exc:
            self._failures += 1
            log.warning("origin exposure monitor: checking %s failed: %s", target.hostname, type(exc).__name__)
            return
        self._checks += 1
        reasons = "; ".join(report.reasons)
        if recorded.notify:
            log.warning(
                "origin exposure: %s (zone %s) origin %s was %s and is now %s: %s",
                target.hostname,
                target.zone_name,
                target.origin_label,
                was,
                recorded.verdict,
                reasons,
            )
            await self._notify(exposure_event(target, recorded, report.reasons, checked_at, was=was))
        elif recorded.changed:
            log.info(
                "origin exposure: %s (zone %s) origin %s is %s: %s",
                target.hostname,
                target.zone_name,
                target.origin_label,
                recorded.verdict,
                reasons,
            )

    def _probe(self, target: CheckTarget) -> CheckReport:
        cert = target.client_cert
        usable = cert is not None and target.client_cert_error is None
        report = self._check(
            target.url,
            server_name=target.hostname,
            edge_client=(cert.chain_pem, cert.key_pem) if usable and cert is not None else None,
            edge_certificate_pem=cert.chain_pem.decode() if cert is not None else None,
            # No certificate at all: probe 3 is what probe 1 got. An unusable one: probe 3 is not run.
            edge_source=cert.source if cert is not None else ("none" if target.client_cert_error is None else None),
            timeout=self.config.probe_timeout,
        )
        if target.client_cert_error is not None:
            extra = (
                f"the edge's client certificate for {target.hostname} cannot be used "
                f"({target.client_cert_error}): requests through the edge fail with 525",
            )
            report = replace(report, reasons=report.reasons + extra)
        return report

    def _record(self, target: CheckTarget, report: CheckReport, now: datetime) -> tuple[Recorded, str]:
        with status_write(self._store) as conn:
            old = get_check(conn, target.zone_id, target.hostname)
            previous = PreviousCheck(old.verdict, old.previous_verdict, old.changed_at) if old else None
            recorded = next_record(previous, report.verdict.value, now)
            put_check(
                conn,
                OriginCheck(
                    zone_id=target.zone_id,
                    zone_name=target.zone_name,
                    hostname=target.hostname,
                    origin=target.origin_label,
                    verdict=recorded.verdict,
                    reasons=report.reasons,
                    checked_at=now,
                    previous_verdict=recorded.previous_verdict,
                    changed_at=recorded.changed_at,
                ),
            )
        was = previous.verdict if previous is not None else "none"
        return recorded, ("LOCKED" if recorded.notify else was)

    async def _notify(self, event: dict[str, Any]) -> None:
        self._notifications += 1
        try:
            await _in_daemon_thread(self.notifier.notify, event)
        except Exception as exc:
            log.warning("origin exposure monitor: the notifier failed: %s", type(exc).__name__)


# -- `originlock serve` wiring -----------------------------------------------------------------------


def lease_ttl(config: MonitorConfig) -> float:
    """Seconds an ``origin-monitor`` lease lasts: :data:`LEASE_PERIODS` of the longest gap between two
    renewals, which is one tick or one spacing plus one check that runs into every timeout."""
    longest_check = check_spacing(config.checks_per_minute) + _STEPS_PER_CHECK * config.probe_timeout
    return LEASE_PERIODS * max(min(config.interval, MAX_TICK), longest_check)


def _compiled(store: Store) -> Snapshot:
    return compile_snapshot(store, datetime.now(UTC))


def start_origin_monitor(
    interval: float,
    store: Store,
    snapshots: object,
    origin_https_port: int,
    *,
    notifier: Notifier | None = None,
    node: str | None = None,
) -> asyncio.Task[None] | None:
    """Start the monitor as a task on the running loop; ``None`` when ``interval`` is 0.

    ``snapshots`` is what ``serve`` gave the edge: a :class:`SnapshotSource` is asked for its current
    snapshot; anything else (a factory for ``--workers``, whose sources live in other processes) means the
    monitor compiles its own from ``store`` at each look. ``node`` is this process's holder id
    (:func:`~originlock.server.leadership.node_id`): the monitor then checks only while it holds the
    ``origin-monitor`` lease; None runs it without one.
    """
    if interval <= 0:
        log.info("origin exposure monitor: off (--origin-monitor-interval 0)")
        return None
    current = snapshots.current if isinstance(snapshots, SnapshotSource) else functools.partial(_compiled, store)
    config = MonitorConfig(interval=interval, origin_https_port=origin_https_port)
    lease = None if node is None else JobLease(store, JOB, node, timedelta(seconds=lease_ttl(config)))
    monitor = OriginMonitor(store, current, config, notifier=notifier, lease=lease)
    log.info(
        "origin exposure monitor: every %gs, at most %d checks a minute", interval, monitor.config.checks_per_minute
    )
    return asyncio.get_running_loop().create_task(monitor.run(), name="originlock-origin-monitor")


async def stop_origin_monitor(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
