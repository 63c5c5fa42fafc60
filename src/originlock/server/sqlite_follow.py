"""When a snapshot source on a SQLite file must read the change log: inotify wake-ups, ``data_version``
looks, the recheck after a write, and the grace left to this process's own commits.

SQLite has no ``NOTIFY``. The kernel says when the file is written (``store/commit_watch.py``); a look at
``PRAGMA data_version`` and the generation, on the event loop, says whether the write was a commit edges
care about. :class:`SqliteFollower` keeps that bookkeeping so that the source
(``server/store_snapshots.py``) only asks two questions: how long may it sleep, and is it behind.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable

from originlock.store.commit_watch import CommitWatch

__all__ = ["OWN_GRACE_SECONDS", "WATCH_SECONDS", "Look", "SqliteFollower"]

#: Without inotify, ``PRAGMA data_version`` is read on the event loop this often (the period every edge
#: process used before inotify: the fallback is never slower to notice than that was). Reading the change log
#: itself ten times a second was most of an idle node's CPU; the ``data_version`` reads were most of what was
#: left.
WATCH_SECONDS = 0.1
#: A write reported by inotify precedes its commit's visibility: the frames are written (the event), then
#: fsynced, and only then does the writer publish the commit in the shared-memory index (no event). A look that
#: finds ``data_version`` unmoved after a write is repeated, RECHECK_FIRST_SECONDS later and then at doubling
#: intervals (at most RECHECK_MAX_SECONDS apart), until it moves or RECHECK_WINDOW_SECONDS have passed (a write
#: that was no commit: a checkpoint). A slower fsync is caught by the next write or the fallback look.
RECHECK_FIRST_SECONDS = 0.001
RECHECK_MAX_SECONDS = 0.25
RECHECK_WINDOW_SECONDS = 3.0
#: A commit of this process's own store is left to its hook (run after the API response) for this long; past
#: it the change log is read as if the hook were lost.
OWN_GRACE_SECONDS = 2.0


class Look(enum.Enum):
    """What a look at the file found."""

    BEHIND = "behind"  # the change log must be read
    OWN = "own"  # only this process's own commits are ahead: their hooks deliver them
    CURRENT = "current"  # the applied generation is the file's


class SqliteFollower:
    """The inotify watch of one SQLite file and what its looks have found.

    Args:
        path: the database file.
        loop: the event loop the watch's wake-ups run on.
        wake: called on the loop when the file is written.
        own_generation: the newest generation this process's own store committed (0 without one); those
            commits' hooks deliver them after the API's response.
    """

    def __init__(
        self,
        path: str,
        loop: asyncio.AbstractEventLoop,
        wake: Callable[[], None],
        own_generation: Callable[[], int],
    ) -> None:
        self._wake = wake
        self._own_generation = own_generation
        #: A write was reported since the last look.
        self._touched = False
        #: The last look found the snapshot current and no write has been reported since, so it is current now.
        self.quiet = False
        #: The newest generation a look read from the file, and since when only this process's own commits
        #: have been ahead of the applied one.
        self._file_generation = 0
        self._own_since: float | None = None
        #: The last look saw ``data_version`` move; the next recheck after a write, its interval, and the end of
        #: the window.
        self._moved = False
        self._recheck_at: float | None = None
        self._recheck_delay = RECHECK_FIRST_SECONDS
        self._recheck_end = 0.0
        self.watch = CommitWatch(path)
        self.watch.follow(loop, self._on_write)

    def __repr__(self) -> str:
        return f"SqliteFollower({self.watch!r}, file_generation={self._file_generation})"

    @property
    def following(self) -> bool:
        """Whether inotify reports the writes (otherwise the caller looks every :data:`WATCH_SECONDS`)."""
        return self.watch.following

    def close(self) -> None:
        self.watch.close()

    def _on_write(self) -> None:
        self._touched = True
        self.quiet = False
        self._wake()

    def take_touched(self) -> bool:
        """Whether a write was reported since the last call."""
        touched, self._touched = self._touched, False
        return touched

    def timeout(self, now: float, timeout: float) -> float:
        """``timeout`` shortened to the next instant a look is due without a wake-up."""
        if not self.following:
            timeout = min(timeout, WATCH_SECONDS)
        if self._own_since is not None:
            timeout = min(timeout, max(0.0, OWN_GRACE_SECONDS - (now - self._own_since)))
        if self._recheck_at is not None:
            timeout = min(timeout, max(0.0, self._recheck_at - now))
        return timeout

    def look_due(self, now: float, touched: bool) -> bool:
        """Whether to look now (besides the caller's own fallback period)."""
        return (
            touched
            or not self.following
            or self._own_since is not None
            or (self._recheck_at is not None and now >= self._recheck_at)
        )

    def look(self, applied: int) -> Look:
        """A look at the file, on the loop: whether the change log must be read. Not when nobody committed
        (``data_version``), nor when the commits bumped no generation past ``applied`` (the node registration's
        heartbeat, a job's lease: status writes no snapshot depends on), nor, for up to
        :data:`OWN_GRACE_SECONDS`, when the newest is this process's own write, whose hook delivers it once the
        API's response is out (as the listener skips its NOTIFY on PostgreSQL)."""
        self._moved = self.watch.changed()
        if self._moved:
            generation = self.watch.generation()
            if generation is None:
                return Look.BEHIND
            self.watch.settle()  # what the file holds now is known: the generation decides from here
            self._file_generation = generation
        if self._file_generation > applied:
            if self._file_generation > self._own_generation():
                return Look.BEHIND
            now = time.monotonic()
            if self._own_since is None:
                self._own_since = now
            elif now - self._own_since >= OWN_GRACE_SECONDS:
                return Look.BEHIND
            self.quiet = False
            return Look.OWN
        self._own_since = None
        self.quiet = self.following
        return Look.CURRENT

    def schedule_recheck(self, touched: bool) -> None:
        """After a look: look again soon if a write was reported and ``data_version`` has not moved yet (its
        commit is not published yet: see RECHECK_FIRST_SECONDS)."""
        now = time.monotonic()
        if touched:
            self._recheck_delay, self._recheck_end = RECHECK_FIRST_SECONDS, now + RECHECK_WINDOW_SECONDS
        elif self._recheck_at is None:
            return
        if self._moved or now >= self._recheck_end:
            self._recheck_at = None
            return
        self._recheck_at = now + self._recheck_delay
        self._recheck_delay = min(self._recheck_delay * 2, RECHECK_MAX_SECONDS)

    def refreshed(self, applied: int, polled: bool) -> None:
        """The caller's refresh succeeded; ``polled``: it read the change log up to the file's present."""
        if polled:
            self.watch.settle()
        if applied >= self._file_generation:
            # Current as of this refresh, unless a write was reported meanwhile.
            self._own_since = None
            self.quiet = self.following and not self._touched
