"""The exposure monitor against real nginx origins: LOCKED, then the origin is reconfigured open, and the
monitor records both verdicts and notifies exactly once."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from monhelpers import HOST, MonitorEnv

from originlock.originkit.memcert import KeyMaterialError
from originlock.originkit.report import CheckReport, Verdict
from originlock.server.monitor import OriginMonitor
from originlock.server.monitor_notify import RecordingNotifier
from originlock.server.monitor_policy import ALERT_TYPE, MonitorConfig
from originlock.snapshot.model import Snapshot
from originlock.store import dns, settings
from originlock.store.compile import compile_snapshot
from originlock.store.origin_checks import get_check, list_checks

pytestmark = pytest.mark.slow


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _monitor(env: MonitorEnv, notifier: RecordingNotifier, clock: FakeClock, **kw: Any) -> OriginMonitor:
    def snapshots() -> Snapshot:
        return compile_snapshot(env.store, datetime.now(UTC))

    config = MonitorConfig(interval=3600, checks_per_minute=600, origin_https_port=env.origin_port, probe_timeout=5)
    return OriginMonitor(env.store, snapshots, config, notifier=notifier, monotonic=clock, **kw)


def test_locked_then_open_records_both_and_notifies_once(env: MonitorEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="originlock")
    notifier, clock = RecordingNotifier(), FakeClock()
    monitor = _monitor(env, notifier, clock)
    generation = env.store.generation()

    origin = env.origin(locked=True, name="locked")
    try:
        assert asyncio.run(monitor.check_due()) == 1
    finally:
        origin.stop()
    with env.store.read() as conn:
        first = get_check(conn, env.zone_id, HOST)
    assert first is not None and first.verdict == "LOCKED", first
    assert first.previous_verdict is None and first.changed_at == first.checked_at
    assert first.origin == f"127.0.0.1:{env.origin_port}"
    assert notifier.events == []
    # Observations are not configuration: the edge's snapshot generation did not move.
    assert env.store.generation() == generation

    origin = env.origin(locked=False, name="open")
    try:
        # Not due yet: one check per origin per interval.
        assert asyncio.run(monitor.check_due()) == 0
        clock.now += 3600
        assert asyncio.run(monitor.check_due()) == 1
        clock.now += 3600
        assert asyncio.run(monitor.check_due()) == 1  # still open: recorded again, no second notification
    finally:
        origin.stop()

    with env.store.read() as conn:
        second = get_check(conn, env.zone_id, HOST)
    assert second is not None and second.verdict == "OPEN"
    assert second.previous_verdict == "LOCKED"
    assert second.changed_at is not None and first.checked_at < second.changed_at < second.checked_at
    assert "accepts TLS without a client certificate" in second.reasons[0]

    assert len(notifier.events) == 1
    event = notifier.events[0]
    assert event["alert_type"] == ALERT_TYPE and event["hostname"] == HOST and event["zone_id"] == env.zone_id
    assert (event["previous_verdict"], event["verdict"]) == ("LOCKED", "OPEN")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "was LOCKED and is now OPEN" in warnings[0] and HOST in warnings[0]
    assert "PRIVATE KEY" not in caplog.text
    assert monitor.statistics().checks == 3 and monitor.statistics().notifications == 1


def test_zone_opt_out_skips_and_forgets(env: MonitorEnv) -> None:
    notifier, clock = RecordingNotifier(), FakeClock()
    monitor = _monitor(env, notifier, clock)
    origin = env.origin(locked=False, name="open")
    try:
        assert asyncio.run(monitor.check_due()) == 1
        with env.store.write() as conn:
            settings.set_setting(conn, env.zone_id, "origin_exposure_monitor", "off")
        clock.now += 7200
        assert asyncio.run(monitor.check_due()) == 0
    finally:
        origin.stop()
    with env.store.read() as conn:
        assert list_checks(conn, env.zone_id) == []
    assert monitor.statistics().targets == 0


def _report(verdict: Verdict) -> CheckReport:
    return CheckReport(target="x", server_name=HOST, verdict=verdict, reasons=("r",), probes=())


def test_checks_are_sequential_and_rate_limited(env: MonitorEnv) -> None:
    """A stand-in checker (no network): two hostnames at 120 checks a minute start >= 0.5 s apart, never overlap."""
    with env.store.write() as conn:
        dns.create_record(conn, env.zone_id, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    starts: list[float] = []
    running = 0
    peak = 0
    lock = threading.Lock()

    def check(url: str, **kw: Any) -> CheckReport:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            starts.append(time.monotonic())
        assert kw["edge_client"] is not None and kw["edge_source"] == "global"  # the edge's own certificate
        time.sleep(0.1)
        with lock:
            running -= 1
        return _report(Verdict.LOCKED)

    config = MonitorConfig(interval=3600, checks_per_minute=120, origin_https_port=env.origin_port)
    monitor = OriginMonitor(env.store, lambda: compile_snapshot(env.store, datetime.now(UTC)), config, check=check)
    assert asyncio.run(monitor.check_due()) == 2
    # The spacing is kept between the monitor's turns; the checks' threads start a little after their turn, the
    # first one later still on a loaded machine (12 ms seen): without the limit they would be ~0.1 s apart.
    assert peak == 1 and len(starts) == 2 and starts[1] - starts[0] >= 0.45


def test_a_failed_check_is_counted_not_recorded(env: MonitorEnv, caplog: pytest.LogCaptureFixture) -> None:
    def check(url: str, **kw: Any) -> CheckReport:
        raise KeyMaterialError("the client certificate chain or key could not be loaded (mismatch or bad PEM)")

    config = MonitorConfig(origin_https_port=env.origin_port)
    monitor = OriginMonitor(env.store, lambda: compile_snapshot(env.store, datetime.now(UTC)), config, check=check)
    assert asyncio.run(monitor.check_due()) == 1
    assert monitor.statistics().failures == 1 and monitor.statistics().checks == 0
    with env.store.read() as conn:
        assert list_checks(conn) == []
    assert "could not be loaded" in caplog.text and "PRIVATE KEY" not in caplog.text
    # Not retried on the next tick: a failing target waits for the interval like any other.
    assert asyncio.run(monitor.check_due()) == 0
