"""Notice commits to a SQLite store by other connections without a query: ``PRAGMA data_version``.

A SQLite node's edge learns of its own process's writes through ``Store.committed_hooks``; the
``--workers`` processes (and anything else writing the same file) need another signal, since SQLite has no
``NOTIFY``. Reading the change log ten times a second was that signal, and it was most of an idle node's
CPU: a worker-thread hop and an SQLAlchemy query each time, in every edge process.

``data_version`` is a counter SQLite keeps per connection that changes whenever another connection has
committed to the file. In WAL mode reading it takes a read lock in the shared-memory index and reads no
page: a few microseconds, cheap enough to read on the event loop ten times a second. The snapshot source
reads the change log only when it moved (or at its slow fallback poll).
"""

from __future__ import annotations

import sqlite3

from originlock.store.db import Store

__all__ = ["CommitWatch", "sqlite_file"]


class CommitWatch:
    """A connection of its own to the SQLite file at ``path``, used only to read ``data_version``.

    Commits by every other connection count, this process's own pools included (their changes are then
    read from the log once more: a few queries per write, none while idle).
    """

    def __init__(self, path: str) -> None:
        # timeout=0: the loop never waits for a lock; a busy file reads as "changed" (the caller then looks
        # at the log from its worker thread, which may wait).
        self._conn = sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)
        self._seen = self._read()
        self._read_now: int | None = self._seen

    def __repr__(self) -> str:
        return f"CommitWatch(data_version={self._seen})"

    def _read(self) -> int:
        row = self._conn.execute("PRAGMA data_version").fetchone()
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

    def settle(self) -> None:
        """The caller has applied what the log held after the last :meth:`changed`: later commits only count
        from there. Not called when that failed, so the next look reads the log again."""
        if self._read_now is not None:
            self._seen = self._read_now

    def close(self) -> None:
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
