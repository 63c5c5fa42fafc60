"""A kernel notice when files are written: Linux ``inotify`` through libc, no dependency.

Theory of operation. SQLite has no ``NOTIFY``: a commit by another process (``--workers``, the API of
another process on the same file) shows only in the file. Every commit in WAL mode appends frames to the
``-wal`` file with ``write()``, and a checkpoint (or a commit in a rollback-journal mode) writes the main
file: both raise ``IN_MODIFY`` on the written inode, which the kernel queues on an inotify descriptor.
The descriptor is readable while events are queued, so an event loop can wait on it (``add_reader``) and
sleep for as long as nobody writes. Readers do not write either file (the ``-shm`` index is written
through ``mmap``, which inotify does not report), so a node's own snapshot reads wake nobody.

An event says only "written": the caller then asks SQLite itself (``PRAGMA data_version``) whether a
commit happened, so a spurious or early event (frames written, commit frame not yet) costs one pragma.

A watched file that is unlinked, renamed or replaced (``IN_ATTRIB`` on a link count change,
``IN_MOVE_SELF``, ``IN_DELETE_SELF``, ``IN_IGNORED``) or an overflowing queue (``IN_Q_OVERFLOW``) is
reported as ``lost``: the caller re-adds the watches by path (:meth:`FileWatch.rewatch`) and checks at once.

Where inotify is unavailable (not Linux, no symbol, ``EMFILE`` past ``fs.inotify.max_user_instances``,
``ENOSPC`` past ``max_user_watches``) :meth:`FileWatch.open` raises :class:`OSError` and the caller
polls instead.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["FileWatch", "WatchEvents"]

# <sys/inotify.h>
IN_MODIFY: Final = 0x00000002
IN_ATTRIB: Final = 0x00000004
IN_MOVE_SELF: Final = 0x00000800
IN_DELETE_SELF: Final = 0x00000400
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_NONBLOCK: Final = os.O_NONBLOCK
IN_CLOEXEC: Final = 0o2000000
#: What is watched on each file: writes, and the signs that the path may now name another inode.
WATCH_MASK: Final = IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF
#: Events after which the path must be watched anew.
LOST_MASK: Final = IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED | IN_Q_OVERFLOW
#: struct inotify_event: int wd; uint32_t mask, cookie, len; then ``len`` bytes of name.
_EVENT: Final = struct.Struct("iIII")
_READ_BYTES: Final = 4096


@dataclass(frozen=True)
class WatchEvents:
    """What one :meth:`FileWatch.drain` read."""

    #: Events were queued (a write, or one of the ``lost`` kinds).
    touched: bool
    #: A watched path may name another inode now, or events were dropped: :meth:`FileWatch.rewatch`.
    lost: bool


class _Inotify:
    """The three libc calls, looked up once; ``OSError`` when the C library has none of them."""

    def __init__(self) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self.init1: Callable[[int], int] = libc.inotify_init1
            add = libc.inotify_add_watch
            remove = libc.inotify_rm_watch
        except (OSError, AttributeError) as exc:
            raise OSError(errno.ENOSYS, f"inotify not available: {exc}") from exc
        add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        remove.argtypes = [ctypes.c_int, ctypes.c_int]
        self.add_watch: Callable[[int, bytes, int], int] = add
        self.rm_watch: Callable[[int, int], int] = remove


def _libc() -> _Inotify:
    """The inotify calls (a function so that tests can make them fail, as an exhausted system does)."""
    return _Inotify()


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


class FileWatch:
    """An inotify descriptor watching ``paths`` (those that exist; at least the first must).

    Use :meth:`fileno` with ``loop.add_reader``, :meth:`drain` when it is readable, :meth:`close` at the end.

    Raises:
        OSError: inotify is unavailable, or the first path cannot be watched.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self._calls = _libc()
        self._paths = list(paths)
        self._fd = _check(self._calls.init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")
        self._watches: dict[int, str] = {}
        try:
            self.rewatch()
        except OSError:
            os.close(self._fd)
            raise

    def __repr__(self) -> str:
        return f"FileWatch(fd={self._fd}, watching={sorted(self._watches.values())})"

    def fileno(self) -> int:
        return self._fd

    @property
    def watching(self) -> list[str]:
        """The paths watched now (an optional one that did not exist at the last :meth:`rewatch` is not)."""
        return sorted(set(self._watches.values()))

    def rewatch(self) -> None:
        """Watch every path anew: after ``lost``, a path may name a new inode (adding a watch on an inode
        already watched returns its old descriptor). Paths after the first are optional (a ``-wal`` file
        exists only in WAL mode).

        Raises:
            OSError: the first path cannot be watched.
        """
        watches: dict[int, str] = {}
        for index, path in enumerate(self._paths):
            wd = self._calls.add_watch(self._fd, os.fsencode(path), WATCH_MASK)
            if wd < 0:
                code = ctypes.get_errno()
                if index == 0 or code != errno.ENOENT:
                    raise OSError(code, f"inotify_add_watch {path}: {os.strerror(code)}")
                continue
            watches[wd] = path
        for wd in set(self._watches) - set(watches):
            self._calls.rm_watch(self._fd, wd)  # an inode no path names now (EINVAL if already gone: fine)
        self._watches = watches

    def drain(self) -> WatchEvents:
        """Read every queued event (the descriptor is non-blocking). Returns what they amount to."""
        touched = lost = False
        while True:
            try:
                data = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                break
            if not data:
                break
            touched = True
            offset = 0
            while offset + _EVENT.size <= len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                lost = lost or bool(mask & LOST_MASK)
                offset += _EVENT.size + length
        return WatchEvents(touched, lost)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
