"""SqliteFollower on a real SQLite file: what a look finds, the grace left to this process's own commits, the
recheck after a write that is not visible yet, and the timeout it asks for."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from originlock.server import sqlite_follow
from originlock.server.bootstrap import bootstrap
from originlock.server.sqlite_follow import (
    OWN_GRACE_SECONDS,
    RECHECK_FIRST_SECONDS,
    RECHECK_MAX_SECONDS,
    Look,
    SqliteFollower,
)
from originlock.store import zones
from originlock.store.commit_watch import sqlite_file


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    # The module's own name for the clock (the event loop keeps the real one).
    monkeypatch.setattr("originlock.server.sqlite_follow.time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


async def test_looks_tell_behind_own_and_current(tmp_path: Path, clock: Clock) -> None:
    d = bootstrap(tmp_path / "data", f"sqlite:///{tmp_path / 'store.db'}")
    path = sqlite_file(d.store)
    assert path is not None
    own = 0
    wakes: list[int] = []
    follower = SqliteFollower(path, asyncio.get_running_loop(), lambda: wakes.append(1), lambda: own)
    try:
        applied = d.store.generation()
        assert follower.look(applied) is Look.CURRENT and follower.quiet == follower.following
        # Another writer's commit (not this process's: own stays 0): the log must be read.
        with d.store.write() as conn:
            zones.create_zone(conn, name="a.test", account_id=d.account_id)
        assert follower.look(applied) is Look.BEHIND
        # The same commit, had it been this process's own: left to its hook for OWN_GRACE_SECONDS.
        own = d.store.generation()
        assert follower.look(applied) is Look.OWN and not follower.quiet
        clock.now += OWN_GRACE_SECONDS / 2
        assert follower.look(applied) is Look.OWN
        assert follower.timeout(clock.now, 60.0) == pytest.approx(OWN_GRACE_SECONDS / 2)
        clock.now += OWN_GRACE_SECONDS / 2
        assert follower.look(applied) is Look.BEHIND  # the hook never came
        # Refreshed up to the file's generation: current again, and no grace pending.
        follower.refreshed(own, polled=True)
        assert follower.look(own) is Look.CURRENT
        assert follower.timeout(clock.now, 60.0) == (60.0 if follower.following else sqlite_follow.WATCH_SECONDS)
    finally:
        follower.close()
        d.store.close()


async def test_a_write_not_visible_yet_is_rechecked_at_doubling_intervals(tmp_path: Path, clock: Clock) -> None:
    d = bootstrap(tmp_path / "data", f"sqlite:///{tmp_path / 'store.db'}")
    path = sqlite_file(d.store)
    assert path is not None
    follower = SqliteFollower(path, asyncio.get_running_loop(), lambda: None, lambda: 0)
    try:
        applied = d.store.generation()
        assert follower.look(applied) is Look.CURRENT
        follower.schedule_recheck(touched=True)  # a write reported, data_version unmoved
        delays = []
        for _ in range(12):
            assert not follower.look_due(clock.now, touched=False) or not follower.following
            wait = follower.timeout(clock.now, 60.0)
            delays.append(wait)
            clock.now += wait
            assert follower.look_due(clock.now, touched=False)
            assert follower.look(applied) is Look.CURRENT
            follower.schedule_recheck(touched=False)
        if follower.following:
            assert delays[0] == pytest.approx(RECHECK_FIRST_SECONDS)
            assert delays[1] == pytest.approx(2 * RECHECK_FIRST_SECONDS)
            assert max(delays) == pytest.approx(RECHECK_MAX_SECONDS)
        # The commit becomes visible: the next look moves and the rechecks stop.
        with d.store.write() as conn:
            zones.create_zone(conn, name="b.test", account_id=d.account_id)
        assert follower.look(applied) is Look.BEHIND
        follower.schedule_recheck(touched=False)
        assert follower.timeout(clock.now, 60.0) == (60.0 if follower.following else sqlite_follow.WATCH_SECONDS)
    finally:
        follower.close()
        d.store.close()
