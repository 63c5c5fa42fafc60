"""The exposure monitor in a fleet: only the node holding the ``origin-monitor`` lease checks origins, a node
that loses the lease mid-pass stops, another takes over when the holder dies, and stopping gives it up.
A stand-in checker: no network, no nginx."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from monhelpers import HOST, MonitorEnv, make_env

from originlock.originkit.report import CheckReport, Verdict
from originlock.server.leadership import JobLease
from originlock.server.monitor import JOB, OriginMonitor, lease_ttl, start_origin_monitor, stop_origin_monitor
from originlock.server.monitor_policy import MonitorConfig
from originlock.store import dns
from originlock.store.compile import compile_snapshot
from originlock.store.leases import current_lease, release, try_acquire
from originlock.store.origin_checks import list_checks

TTL = timedelta(seconds=90)
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture
def menv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MonitorEnv]:
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    made = make_env(tmp_path, "nginx")  # nginx is never started here
    yield made
    made.store.close()


class Node:
    """One fleet node's monitor: its own lease and monotonic clock, the shared wall clock, a counting checker."""

    def __init__(
        self, env: MonitorEnv, name: str, wall: dict[str, datetime], on_check: Callable[[], object] = list
    ) -> None:
        self.checked: list[str] = []
        self.mono = 0.0

        def check(url: str, **kw: Any) -> CheckReport:
            self.checked.append(kw["server_name"])
            on_check()
            return CheckReport(target=url, server_name=kw["server_name"], verdict=Verdict.LOCKED, reasons=(), probes=())

        self.monitor = OriginMonitor(
            env.store,
            lambda: compile_snapshot(env.store, datetime.now(UTC)),
            MonitorConfig(interval=60, checks_per_minute=6000, origin_https_port=env.origin_port),
            check=check,
            clock=lambda: wall["now"],
            monotonic=lambda: self.mono,
            lease=JobLease(env.store, JOB, f"node-{name}", TTL),
        )

    def look(self) -> int:
        return asyncio.run(self.monitor.check_due())


def test_only_the_lease_holder_checks_and_a_standby_takes_over(menv: MonitorEnv) -> None:
    wall = {"now": T0}
    a, b = Node(menv, "a", wall), Node(menv, "b", wall)
    assert a.look() == 1 and a.checked == [HOST]
    wall["now"] += timedelta(seconds=30)
    b.mono += 3600
    assert b.look() == 0 and b.checked == []  # the origin is due for b, but a runs the monitor
    # a died: nothing renews its lease; b takes over once it runs out.
    wall["now"] = T0 + TTL
    assert b.look() == 1 and b.checked == [HOST]
    a.mono += 3600
    assert a.look() == 0 and a.checked == [HOST]  # a coming back stands by
    with menv.store.read() as conn:
        assert [c.hostname for c in list_checks(conn)] == [HOST]


def test_a_node_that_loses_the_lease_mid_pass_leaves_the_rest(menv: MonitorEnv) -> None:
    with menv.store.write() as conn:
        dns.create_record(conn, menv.zone_id, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    wall = {"now": T0}

    def another_node_takes_over() -> None:
        # As if a's lease had run out during a long pass and node b had taken the job.
        with menv.store.status_write() as conn:
            release(conn, JOB, "node-a")
            assert try_acquire(conn, JOB, "node-b", wall["now"], TTL)

    a = Node(menv, "a", wall, on_check=another_node_takes_over)
    assert a.look() == 1 and len(a.checked) == 1  # two hostnames due; the second is left to node b


def test_serve_wiring_holds_the_lease_and_gives_it_up(menv: MonitorEnv) -> None:
    assert lease_ttl(MonitorConfig()) == 3 * (2 + 9 * 5)  # three times the longest check, spacing included
    assert lease_ttl(MonitorConfig(interval=1, checks_per_minute=60, probe_timeout=0.01)) == pytest.approx(3.27)

    def holder() -> str | None:
        with menv.store.read() as conn:
            lease = current_lease(conn, JOB, datetime.now(UTC))
        return lease.holder if lease else None

    async def scenario() -> None:
        task = start_origin_monitor(3600, menv.store, "compile your own", menv.origin_port, node="node-x")
        assert task is not None
        for _ in range(200):
            with menv.store.read() as conn:
                if list_checks(conn):
                    break
            await asyncio.sleep(0.05)
        assert holder() == "node-x"
        await stop_origin_monitor(task)

    asyncio.run(scenario())
    assert holder() is None  # stopped cleanly: another node can take over at its next look
