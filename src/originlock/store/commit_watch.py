"""Notice commits to a SQLite store by other connections: an inotify wake-up, then ``PRAGMA data_version``.

A SQLite node's edge learns of its own process's writes through ``Store.committed_hooks``; the
``--workers`` processes (and anything else writing the same file) need another signal, since SQLite has no
``NOTIFY``. Reading the change log ten times a second was that signal, and it was most of an idle node's
CPU: a worker-thread hop and an SQLAlchemy query each time, in every edge process. Reading
``PRAGMA data_version`` ten times a second instead still woke every edge process ten times a second.

Now the kernel says when the file is written (:mod:`~originlock.store.file_watch`, inotify on the database
and its ``-wal`` file, on the caller's event loop): an idle node's edge sleeps until somebody commits.
After a wake-up ``data_version`` says whether a commit really happened (a counter SQLite keeps per
connection that changes whenever another connection has committed; in WAL mode a read lock in the
shared-memory index and no page read), and :meth:`CommitWatch.generation` whether it was one that edges
care about (status writes such as the node registration's heartbeat do not bump the generation), both on
this watch's own connection, on the loop: a few tens of microseconds. Where inotify is unavailable or
fails, :meth:`CommitWatch.follow` says so and the caller reads ``data_version`` on a timer, as before.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable

from originlock.store import schema
from originlock.store.db import Store
from originlock.store.file_watch import FileWatch

__all__ = ["CommitWatch", "sqlite_file"]

log = logging.getLogger("originlock.snapshots")

_GENERATION_SQL = f'SELECT value FROM "{schema.generation.name}"'


class CommitWatch:
    """A connection of its own to the SQLite file at ``path``, used only to read ``data_version`` and the
    generation; optionally an inotify watch of the file (:meth:`follow`).

    Commits by every other connection count, this process's own pools included (their changes are then
    read from the log once more: a few queries per write, none while idle).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        # timeout=0: the loop never waits for a lock; a busy file reads as "changed" (the caller then looks
        # at the log from its worker thread, which may wait).
        self._conn = sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)
        # A first read opens the WAL (and creates the -wal file if no connection had): it exists to be
        # watched, and lives as long as this connection (SQLite removes it with the last connection).
        # Busy (a writer's recovery, a migration): the first look then reads as "changed", and the -wal file
        # is created by that writer anyway.
        try:
            self._conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            self._seen = self._read()
        except sqlite3.Error:
            self._seen = -1
        self._read_now: int | None = self._seen
        self._files: FileWatch | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_touch: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"CommitWatch(data_version={self._seen}, following={self.following})"

    # fetchall, not fetchone: a statement not stepped to its end keeps its read transaction (and so an old
    # snapshot, whose data_version and generation never change) open on this connection.
    def _read(self) -> int:
        (row,) = self._conn.execute("PRAGMA data_version").fetchall()
        return int(row[0])

    def changed(self) -> bool:
        """Whether another connection committed since the last :meth:`settle`; ``True`` as well when SQLite
        cannot tell (a lock, an I/O error), so that the caller reads the change log rather than miss a
        change. The version read is remembered for :meth:`settle`."""
        try:
            self._read_now = self._read()
        except sqlite3.Error:
            self._read_now = None
            return True
        return self._read_now != self._seen

    def generation(self) -> int | None:
        """The store's generation, read on this connection; ``None`` when it cannot be read (the caller
        then reads the change log from its worker thread)."""
        try:
            rows = self._conn.execute(_GENERATION_SQL).fetchall()
        except sqlite3.Error:
            return None
        return int(rows[0][0]) if rows else None

    def settle(self) -> None:
        """The caller has applied what the log held after the last :meth:`changed`: later commits only count
        from there. Not called when that failed, so the next look reads the log again."""
        if self._read_now is not None:
            self._seen = self._read_now

    # --- the kernel's notice ------------------------------------------------------------------------

    @property
    def following(self) -> bool:
        """Whether an inotify watch wakes the caller at writes (else the caller must poll)."""
        return self._files is not None

    def follow(self, loop: asyncio.AbstractEventLoop, on_touch: Callable[[], None]) -> bool:
        """Call ``on_touch`` (on ``loop``) whenever the database or its ``-wal`` file is written, or a
        watched path may have been replaced; then :meth:`changed` tells whether that was a commit.

        Returns whether the watch is in place; ``False`` (logged) when inotify is unavailable, and the
        caller polls :meth:`changed` instead. Should the watch fail later, ``on_touch`` is called once more
        and :attr:`following` turns ``False``.
        """
        try:
            files = FileWatch([self._path, self._path + "-wal"])
        except OSError as exc:
            log.warning("SQLite commit watch: no inotify (%s); polling PRAGMA data_version instead", exc)
            return False
        try:
            loop.add_reader(files.fileno(), self._readable)
        except (OSError, NotImplementedError, RuntimeError) as exc:  # a loop without add_reader
            files.close()
            log.warning("SQLite commit watch: the event loop cannot wait on inotify (%s); polling instead", exc)
            return False
        self._files, self._loop, self._on_touch = files, loop, on_touch
        return True

    def _readable(self) -> None:
        files, on_touch = self._files, self._on_touch
        if files is None or on_touch is None:
            return
        try:
            events = files.drain()
            # A -wal file that did not exist at the last (re)watch may exist now: one more syscall per write
            # until it is watched (and in a rollback-journal mode, where there is none).
            if events.lost or len(files.watching) < 2:
                files.rewatch()
        except OSError as exc:
            log.warning("SQLite commit watch: inotify failed (%s); polling PRAGMA data_version instead", exc)
            self._unfollow()
        on_touch()

    def _unfollow(self) -> None:
        files, loop = self._files, self._loop
        self._files = None
        if files is not None:
            if loop is not None and not loop.is_closed():
                loop.remove_reader(files.fileno())
            files.close()

    def close(self) -> None:
        self._unfollow()
        self._conn.close()


def sqlite_file(store: Store) -> str | None:
    """The file to watch when ``store`` is a SQLite file; ``None`` for PostgreSQL (it has ``NOTIFY``) and
    for an in-memory database (no other connection sees it)."""
    if store.backend != "sqlite":
        return None
    path = store.engine.url.database
    if not path or path == ":memory:" or path.startswith("file::memory:"):
        return None
    return path
