"""The store-backed snapshot source: told (or, failing that, polling the change log) what changed, it
recompiles that zone only; writes no snapshot depends on rebuild nothing (issue 15)."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

import originlock
from originlock.server.bootstrap import bootstrap
from originlock.server.registry import NodeRegistration
from originlock.server.snapshot_health import snapshot_json
from originlock.server.sqlite_follow import OWN_GRACE_SECONDS, SqliteFollower
from originlock.server.store_snapshots import (
    StoreSnapshotSource,
    local_snapshot_source,
    long_lived_objects,
)
from originlock.store import dns, file_watch, settings, tokens, zones
from originlock.store.changes import Change, parse_payload
from originlock.store.deadline import SNAPSHOT_TIMEOUTS
from originlock.store.request_scope import request_scope


async def _until(predicate: object, timeout: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():  # type: ignore[operator]
        assert loop.time() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.005)
    return loop.time() - started


async def test_changes_recompile_their_zone_by_hook_or_by_poll(store_url: str, tmp_path: Path) -> None:
    d = bootstrap(tmp_path / "data", store_url)
    store = d.store
    with store.write() as conn:
        zone = zones.create_zone(conn, name="src.test", account_id=d.account_id).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    source = StoreSnapshotSource(store.companion(SNAPSHOT_TIMEOUTS), poll_seconds=0.2)
    assert source.statistics().full_rebuilds == 1 and "www.src.test" in source.current().routes
    task = asyncio.create_task(source.run())
    try:
        # Without the hook, the fallback poll reads the change log and recompiles the one zone.
        with store.write() as conn:
            settings.set_setting(conn, zone, "always_use_https", "on")
        await _until(lambda: source.current().routes["www.src.test"].always_use_https)
        stats = source.statistics()
        assert stats.full_rebuilds == 1 and stats.rebuilds == 2 and stats.generation == store.generation()
        # With the hook (writes through this process), no waiting for the poll.
        store.committed_hooks.append(source.notify)
        with store.write() as conn:
            settings.set_setting(conn, zone, "always_use_https", "off")
        took = await _until(lambda: not source.current().routes["www.src.test"].always_use_https)
        assert took < 0.15  # well before the next 0.2-second poll could have seen it
        before = source.current()
        with store.write() as conn:
            tokens.create_token(conn, "ci", ["*"], None)
        await _until(lambda: source.generation == store.generation())
        assert source.current() is before and source.statistics().rebuilds == 3  # nothing to rebuild
    finally:
        task.cancel()
        store.close()


async def test_each_change_served_is_traced_from_its_writers_clock(store_url: str, tmp_path: Path) -> None:
    d = bootstrap(tmp_path / "data", store_url)
    store = d.store
    with store.write() as conn:
        zone = zones.create_zone(conn, name="trace.test", account_id=d.account_id).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    source = StoreSnapshotSource(store.companion(SNAPSHOT_TIMEOUTS), poll_seconds=30)
    store.committed_hooks.append(source.notify)
    task = asyncio.create_task(source.run())
    try:
        before = time.time()
        with store.write() as conn:
            settings.set_setting(conn, zone, "always_use_https", "on")
        await _until(lambda: source.current().routes["www.trace.test"].always_use_https)
        stats = source.statistics()
        (trace,) = stats.recent_changes
        assert trace.generation == store.generation() == stats.generation and trace.zones == 1
        assert trace.written is not None and before <= trace.written <= trace.received
        assert trace.received <= trace.started <= trace.compiled <= trace.installed <= time.time()
        stages = trace.stages_ms()
        assert stages["total_ms"] == round((trace.installed - trace.written) * 1000, 2)
        assert stats.changes_timed == 1 and stats.last_change_delay_seconds == stats.change_delay_seconds_total > 0
        body = snapshot_json(stats)
        assert body["recent_changes"] == [stages] and body["generation"] == trace.generation
    finally:
        task.cancel()
        store.close()


def test_change_payloads_carry_the_writers_clock_and_older_payloads_still_parse() -> None:
    change = Change(7, frozenset({"z1", "z2"}), False, 1796450000.25)
    parsed = parse_payload(change.payload())
    assert parsed == change and parsed is not None and parsed.at == 1796450000.25
    older = parse_payload(json.dumps({"g": 8, "z": ["z1"], "a": False}))
    assert older == Change(8, frozenset({"z1"})) and older is not None and older.at is None
    # Too many zones for one NOTIFY: "everything", still stamped.
    wide = parse_payload(Change(9, frozenset(f"zone-{i:05}" for i in range(2000)), False, 5.0).payload())
    assert wide is not None and wide.everything and wide.at == 5.0
    for bad in ("[]", '{"g": 1, "z": [], "a": false, "t": "soon"}', "{", '{"g": "x", "z": [], "a": 0}'):
        result = parse_payload(bad)
        assert result is None or result.at is None


def test_whole_builds_run_without_the_collector_and_leave_their_objects_frozen() -> None:
    gc.unfreeze()
    assert gc.isenabled()
    try:
        with long_lived_objects():
            assert not gc.isenabled()
            kept = [{"n": i} for i in range(1000)]
        assert gc.isenabled() and gc.get_freeze_count() >= len(kept)
        gc.disable()
        with long_lived_objects():
            pass
        assert not gc.isenabled()  # a collector someone else turned off stays off
    finally:
        gc.enable()
        gc.unfreeze()


async def test_a_replaced_assembly_is_released_once_the_old_snapshot_is_let_go(store_url: str, tmp_path: Path) -> None:
    d = bootstrap(tmp_path / "data", store_url)
    store = d.store
    with store.write() as conn:
        zone = zones.create_zone(conn, name="retire.test", account_id=d.account_id).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    source = StoreSnapshotSource(store.companion(SNAPSHOT_TIMEOUTS), poll_seconds=30)
    store.committed_hooks.append(source.notify)
    task = asyncio.create_task(source.run())
    try:
        old = source.current()
        with store.write() as conn:  # raw SQL: a write the tracker cannot scope, so a whole rebuild
            conn.execute(text("UPDATE zones SET paused = :p WHERE id = :z"), {"p": True, "z": zone})
        await _until(lambda: "www.retire.test" not in source.current().routes)
        assert source.statistics().full_rebuilds == 2
        await asyncio.sleep(0.7)  # a check or two: the old snapshot is still held here
        assert len(source._retired) == 1 and old.route_for("www.retire.test") is not None
        del old
        await _until(lambda: not source._retired)
    finally:
        task.cancel()
        store.close()


async def test_sqlite_commits_by_other_processes_are_seen_without_reading_the_log_while_idle(tmp_path: Path) -> None:
    d = bootstrap(tmp_path / "data", f"sqlite:///{tmp_path / 'store.db'}")
    store = d.store
    with store.write() as conn:
        zone = zones.create_zone(conn, name="watch.test", account_id=d.account_id).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    # No hook: the writes below stand for another process's (a --workers edge sees them this way).
    source = StoreSnapshotSource(store.companion(SNAPSHOT_TIMEOUTS))
    looks: list[bool] = []
    catch_up = source._catch_up

    def counted(poll: bool) -> None:
        looks.append(poll)
        catch_up(poll)

    source._catch_up = counted  # type: ignore[method-assign]
    task = asyncio.create_task(source.run())
    try:
        await _until(lambda: len(looks) >= 1)  # the first look reads the log
        await asyncio.sleep(0.6)
        assert len(looks) == 1  # idle: data_version unchanged, no thread hop, no query (was one every 0.1 s)
        assert source.statistics().stale_seconds(time.time()) < 0.5  # still known to be current
        with store.write() as conn:
            settings.set_setting(conn, zone, "always_use_https", "on")
        took = await _until(lambda: source.current().routes["www.watch.test"].always_use_https)
        assert took < 2.0 and looks[-1] is True  # long before the 10-s fallback poll
    finally:
        task.cancel()
        store.close()


async def test_the_listener_skips_its_own_processs_writes_which_the_hook_delivers(
    store_url: str, tmp_path: Path
) -> None:
    """A NOTIFY stamped by the store whose hooks feed this source is dropped (the hook delivers that write,
    after the API response); another writer's (another node) is applied."""
    d = bootstrap(tmp_path / "data", store_url)
    source = StoreSnapshotSource(d.store.companion(SNAPSHOT_TIMEOUTS), poll_seconds=30)
    source.own_writer = d.store.writer_id
    try:
        with d.store.write() as conn:
            zone = zones.create_zone(conn, name="own.test", account_id=d.account_id).id
        own = parse_payload(Change(5, frozenset({zone}), False, 1.0, d.store.writer_id).payload())
        other = parse_payload(Change(6, frozenset({zone}), False, 1.0, "another-node").payload())
        assert own is not None and own.writer == d.store.writer_id and other is not None
        source._notified(own)
        assert source._take_pending()[0] == []
        source._notified(other)
        assert [c.generation for c in source._take_pending()[0]] == [6]
    finally:
        d.store.close()


_WRITER = """
import sys, time
from pathlib import Path
from originlock.store import settings
from originlock.store.db import Store
from originlock.store.sealing import KeySealer, load_or_create_master_key

data_dir, url, zone, value = sys.argv[1:]
store = Store(url, KeySealer(load_or_create_master_key(Path(data_dir) / "master.key")), migrate_schema=False)
with store.write() as conn:
    settings.set_setting(conn, zone, "always_use_https", value)
print(time.time(), flush=True)
store.close()
"""


def _write_in_another_process(data_dir: Path, url: str, zone: str, value: str) -> float:
    """A setting written by a separate process through its own Store (the API process, seen from a
    --workers edge); returns the writer's clock right after its commit."""
    src = str(Path(originlock.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(data_dir), url, zone, value],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    return float(done.stdout.split()[-1])


async def test_another_processs_commit_wakes_an_idle_source_through_inotify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    d = bootstrap(tmp_path / "data", url)
    store = d.store
    with store.write() as conn:
        zone = zones.create_zone(conn, name="inotify.test", account_id=d.account_id).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    source = StoreSnapshotSource(store.companion(SNAPSHOT_TIMEOUTS))  # no hook: only the file tells
    looks: list[float] = []
    reads: list[bool] = []
    behind, catch_up = source._look, source._catch_up

    def counted_look(follower: SqliteFollower) -> bool:
        looks.append(time.monotonic())
        return behind(follower)

    def counted_read(poll: bool) -> None:
        reads.append(poll)
        catch_up(poll)

    source._look = counted_look  # type: ignore[method-assign]
    source._catch_up = counted_read  # type: ignore[method-assign]
    task = asyncio.create_task(source.run())
    try:
        await _until(lambda: len(reads) >= 1)  # the first look reads the log
        await asyncio.sleep(1.0)
        # Idle: no wake-up at all (data_version was read ten times a second), and current all the same.
        assert looks == [] and reads == [True]
        assert source.statistics().stale_seconds(time.time()) < 0.05
        # A status write in this process (the node registration's heartbeat): a look, no log read.
        NodeRegistration(store, "n1", "serve", {}, lambda: source.generation).beat()
        await _until(lambda: len(looks) >= 1)
        await asyncio.sleep(0.1)
        assert reads == [True]
        # Another process's setting: served well before the 10-s fallback look.
        committed = await asyncio.to_thread(_write_in_another_process, tmp_path / "data", url, zone, "on")
        await _until(lambda: source.current().routes["www.inotify.test"].always_use_https, timeout=3.0)
        served = time.time()
        assert reads[-1] is True and served - committed < 2.0, served - committed
        assert source.generation == store.generation()
    finally:
        task.cancel()
        store.close()


async def test_without_inotify_the_source_polls_data_version_and_still_sees_other_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify_init1 failing (EMFILE past fs.inotify.max_user_instances): the source falls back to reading
    data_version every WATCH_SECONDS, as before inotify."""

    class Exhausted:
        def init1(self, flags: int) -> int:
            ctypes.set_errno(errno.EMFILE)
            return -1

    monkeypatch.setattr(file_watch, "_libc", Exhausted)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    d = bootstrap(tmp_path / "data", url)
    store = d.store
    with store.write() as conn:
        zone = zones.create_zone(conn, name="fallback.test", account_id=d.account_id).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    source = StoreSnapshotSource(store.companion(SNAPSHOT_TIMEOUTS))
    looks: list[bool] = []
    behind = source._look

    def counted_look(follower: SqliteFollower) -> bool:
        looks.append(follower.following)
        return behind(follower)

    source._look = counted_look  # type: ignore[method-assign]
    task = asyncio.create_task(source.run())
    try:
        await asyncio.sleep(0.55)
        assert len(looks) >= 3 and not any(looks)  # polled, without a watch
        assert source.statistics().stale_seconds(time.time()) < 0.5
        committed = await asyncio.to_thread(_write_in_another_process, tmp_path / "data", url, zone, "on")
        await _until(lambda: source.current().routes["www.fallback.test"].always_use_https, timeout=3.0)
        assert time.time() - committed < 2.0
    finally:
        task.cancel()
        store.close()


async def test_this_processs_own_sqlite_write_is_left_to_its_hook_after_the_response(tmp_path: Path) -> None:
    """The file's wake-up at an API write of this process does not start the refresh before the response
    (the hook does, after it, with the writer's clock); a hook that never comes is covered by the log."""
    d = bootstrap(tmp_path / "data", f"sqlite:///{tmp_path / 'store.db'}")
    with d.store.write() as conn:
        zone = zones.create_zone(conn, name="own.test", account_id=d.account_id).id
        dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
    source = local_snapshot_source(d)
    reads: list[bool] = []
    catch_up = source._catch_up

    def counted(poll: bool) -> None:
        reads.append(poll)
        catch_up(poll)

    source._catch_up = counted  # type: ignore[method-assign]
    task = asyncio.create_task(source.run())
    try:
        await _until(lambda: len(reads) >= 1)
        with request_scope() as scope:  # an API request: the hook waits for the response
            with d.store.write() as conn:
                settings.set_setting(conn, zone, "always_use_https", "on")
            await asyncio.sleep(0.3)  # the file woke the source meanwhile
            assert reads == [True] and not source.current().routes["www.own.test"].always_use_https
        del scope  # the response is out: the deferred hook runs
        await _until(lambda: source.current().routes["www.own.test"].always_use_https)
        assert reads[-1] is False  # from the hook, not the log
        (trace,) = source.statistics().recent_changes
        assert trace.written is not None and trace.generation == d.store.generation()
        # A hook that never comes (none registered for this write): the log, once the grace is over.
        d.store.committed_hooks.clear()
        with d.store.write() as conn:
            settings.set_setting(conn, zone, "always_use_https", "off")
        took = await _until(lambda: not source.current().routes["www.own.test"].always_use_https, timeout=6.0)
        assert took >= OWN_GRACE_SECONDS - 0.3 and reads[-1] is True
    finally:
        task.cancel()
        d.store.close()
