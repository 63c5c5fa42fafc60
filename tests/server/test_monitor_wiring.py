"""The monitor's wiring without network: the log-line notifier, a failing notifier, and how `serve` starts it."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from monhelpers import HOST, make_env

from originlock.originkit.report import CheckReport, Verdict
from originlock.server.monitor import OriginMonitor, start_origin_monitor, stop_origin_monitor
from originlock.server.monitor_notify import LogNotifier
from originlock.server.monitor_policy import MonitorConfig
from originlock.server.store_snapshots import StoreSnapshotSource
from originlock.store.compile import compile_snapshot
from originlock.store.origin_checks import list_checks


def test_log_notifier_writes_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="originlock.notify")
    LogNotifier().notify({"alert_type": "originlock_origin_exposed", "hostname": HOST})
    (record,) = caplog.records
    assert record.name == "originlock.notify" and record.levelno == logging.INFO
    prefix, _, payload = record.getMessage().partition(" ")
    assert prefix == "notification" and json.loads(payload)["hostname"] == HOST


def test_a_failing_notifier_does_not_stop_the_monitor(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = make_env(tmp_path, "nginx")
    verdicts = iter([Verdict.LOCKED, Verdict.OPEN])

    def check(url: str, **kw: Any) -> CheckReport:
        return CheckReport(target=url, server_name=HOST, verdict=next(verdicts), reasons=("r",), probes=())

    class Broken:
        def notify(self, event: dict[str, Any]) -> None:
            raise ConnectionError("webhook down")

    now = [0.0]
    monitor = OriginMonitor(
        env.store,
        lambda: compile_snapshot(env.store, datetime.now(UTC)),
        MonitorConfig(interval=10, checks_per_minute=600),
        notifier=Broken(),
        check=check,
        monotonic=lambda: now[0],
    )
    try:
        assert asyncio.run(monitor.check_due()) == 1
        now[0] += 10
        assert asyncio.run(monitor.check_due()) == 1
        with env.store.read() as conn:
            (row,) = list_checks(conn)
        assert (row.verdict, row.previous_verdict) == ("OPEN", "LOCKED")
        assert "the notifier failed: ConnectionError" in caplog.text
        assert monitor.statistics().notifications == 1 and monitor.statistics().checks == 2
    finally:
        env.store.close()


def test_serve_wiring(tmp_path: Path) -> None:
    env = make_env(tmp_path, "nginx")

    async def _next_check(after: datetime | None) -> datetime:
        for _ in range(100):
            with env.store.read() as conn:
                checks = list_checks(conn)
            if checks and (after is None or checks[0].checked_at > after):
                return checks[0].checked_at
            await asyncio.sleep(0.05)
        raise AssertionError("the monitor did not check within 5 s")

    async def scenario() -> None:
        assert start_origin_monitor(0, env.store, None, 443) is None
        await stop_origin_monitor(None)
        source = StoreSnapshotSource(env.store)
        last: datetime | None = None
        for snapshots in (source, "a factory for --workers: the monitor compiles its own"):
            task = start_origin_monitor(3600, env.store, snapshots, env.origin_port)
            assert task is not None and task.get_name() == "originlock-origin-monitor"
            last = await _next_check(last)  # the first look happens at once
            await stop_origin_monitor(task)
            assert task.cancelled()

    try:
        asyncio.run(scenario())
        with env.store.read() as conn:
            checks = list_checks(conn)
        # Nothing listens on origin_port: a refused connection proves nothing either way.
        assert [(c.hostname, c.verdict) for c in checks] == [(HOST, "UNREACHABLE")]
    finally:
        env.store.close()
