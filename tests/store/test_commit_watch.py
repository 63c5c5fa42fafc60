"""The SQLite store's change signal: an inotify wake-up, then PRAGMA data_version (store/commit_watch.py,
store/file_watch.py)."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from originlock.store import file_watch, tokens
from originlock.store.commit_watch import CommitWatch, sqlite_file
from originlock.store.db import Store
from originlock.store.file_watch import FileWatch, WatchEvents
from originlock.store.sealing import KeySealer


def test_a_commit_by_another_connection_reads_as_changed_until_settled(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", KeySealer(b"k" * 32))
    path = sqlite_file(store)
    assert path == str(tmp_path / "store.db")
    watch = CommitWatch(path)
    try:
        assert not watch.changed()
        with store.read() as conn:  # a read commits nothing
            tokens.list_tokens(conn)
        assert not watch.changed()
        with store.write() as conn:
            tokens.create_token(conn, "ci", ["*"], None)
        # Changed until the caller says it applied what it read: a failed catch-up looks again.
        assert watch.changed() and watch.changed()
        watch.settle()
        assert not watch.changed()
        with store.write() as conn:
            tokens.create_token(conn, "ci2", ["*"], None)
        assert watch.changed()
    finally:
        watch.close()
        store.close()


def test_only_sqlite_files_are_watched(tmp_path: Path) -> None:
    memory = Store("sqlite://", KeySealer(b"k" * 32))
    try:
        assert sqlite_file(memory) is None
    finally:
        memory.close()


# --- the kernel's notice (store/file_watch.py) ----------------------------------------------------------


def _commit_in_another_process(path: Path, sql: str) -> None:
    """One transaction by a separate process (as a --workers edge sees the API process's writes)."""
    script = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.close()\n"
    subprocess.run([sys.executable, "-c", script, str(path), sql], check=True, timeout=30)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not condition():
        assert loop.time() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.005)
    return loop.time() - started


async def test_another_processs_commit_wakes_the_watch_and_reads_do_not(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(f"sqlite:///{db}", KeySealer(b"k" * 32))
    watch = CommitWatch(str(db))
    touches: list[float] = []
    try:
        assert watch.follow(asyncio.get_running_loop(), lambda: touches.append(time.monotonic()))
        assert watch.following and "following=True" in repr(watch)
        with store.read() as conn:  # readers write neither file: nobody is woken
            tokens.list_tokens(conn)
        await asyncio.sleep(0.3)
        assert touches == [] and not watch.changed()
        generation = store.generation()
        # A commit that bumps no generation (a status write): woken, changed, generation the same.
        await asyncio.to_thread(_commit_in_another_process, db, "CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        await _until(lambda: bool(touches))
        assert watch.changed() and watch.generation() == generation
        watch.settle()
        touches.clear()
        await asyncio.to_thread(_commit_in_another_process, db, "UPDATE generation SET value = value + 1;")
        await _until(lambda: bool(touches))
        assert watch.changed() and watch.generation() == generation + 1
    finally:
        watch.close()
        store.close()


class _ExhaustedInotify:
    """inotify_init1 failing as it does past fs.inotify.max_user_instances."""

    def init1(self, flags: int) -> int:
        ctypes.set_errno(errno.EMFILE)
        return -1


async def test_without_inotify_follow_says_so_and_the_caller_polls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "store.db"
    store = Store(f"sqlite:///{db}", KeySealer(b"k" * 32))
    monkeypatch.setattr(file_watch, "_libc", _ExhaustedInotify)
    watch = CommitWatch(str(db))
    try:
        with caplog.at_level(logging.WARNING, logger="originlock.snapshots"):
            assert not watch.follow(asyncio.get_running_loop(), lambda: None)
        assert not watch.following
        assert "no inotify" in caplog.text and "Too many open files" in caplog.text
        # The pragma still answers, for the caller's poll.
        await asyncio.to_thread(_commit_in_another_process, db, "UPDATE generation SET value = value + 1;")
        assert watch.changed()
    finally:
        watch.close()
        store.close()


async def test_a_database_unlinked_under_the_watch_ends_it_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(f"sqlite:///{db}", KeySealer(b"k" * 32))
    watch = CommitWatch(str(db))
    touches: list[bool] = []
    try:
        assert watch.follow(asyncio.get_running_loop(), lambda: touches.append(watch.following))
        os.unlink(db)  # the link count changes (IN_ATTRIB): the path must be watched anew, and cannot be
        await _until(lambda: bool(touches))
        assert touches == [False] and not watch.following  # the caller is told, and polls from then on
    finally:
        watch.close()
        store.close()


def test_a_replaced_file_is_watched_anew(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"1")
    files = FileWatch([str(path), str(tmp_path / "absent")])
    try:
        assert files.watching == [str(path)]  # an optional path that does not exist is skipped
        assert files.drain() == WatchEvents(touched=False, lost=False)
        with path.open("ab") as f:
            f.write(b"2")
        assert files.drain() == WatchEvents(touched=True, lost=False)
        fresh = tmp_path / "g"
        fresh.write_bytes(b"new")
        os.replace(fresh, path)  # the path names another inode now
        assert files.drain().lost
        files.rewatch()
        files.drain()  # the old watch's IN_IGNORED
        with path.open("ab") as f:
            f.write(b"3")
        assert files.drain().touched  # the new inode is watched
    finally:
        files.close()
