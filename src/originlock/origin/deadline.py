"""A re-armable deadline that costs no timer operation in the common case.

Every keep-alive exchange needs a timeout (origin read, visitor idle), but almost none of them fire.
``loop.call_later`` + ``cancel`` per wait allocates a ``TimerHandle`` and starts and stops a libuv timer
each time; in the edge benchmark that was two pairs per request. A :class:`Deadline` keeps at most one
scheduled callback: :meth:`arm` only records the new expiry time when a callback is already scheduled
no later than it, :meth:`disarm` only forgets the time; when the callback runs early (the deadline
moved) it re-schedules itself for the recorded time. The result is at most one timer operation per
timeout *period* per connection instead of two per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Deadline"]


def _nothing() -> None:
    return None


class Deadline:
    """Calls ``on_expire()`` once when the armed time passes without :meth:`disarm`."""

    __slots__ = ("_at", "_handle", "_handle_at", "_loop", "_on_expire")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_expire: Callable[[], None]) -> None:
        self._loop = loop
        self._on_expire = on_expire
        self._at: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at = 0.0

    @property
    def armed(self) -> bool:
        return self._at is not None

    def arm(self, timeout: float) -> None:
        """Expire ``timeout`` seconds from now (replacing any earlier arming)."""
        at = self._at = self._loop.time() + timeout
        handle = self._handle
        if handle is not None:
            if self._handle_at <= at:
                return  # the scheduled callback will find the later time and re-schedule
            handle.cancel()
        self._schedule(at)

    def disarm(self) -> None:
        self._at = None

    def cancel(self) -> None:
        """Disarm and drop the scheduled callback (when the owner goes away).

        Also forgets ``on_expire``: it is usually a bound method of the owner, which holds this deadline,
        and that cycle would leave every closed connection to the cyclic garbage collector.
        """
        self._at = None
        self._on_expire = _nothing
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, at: float) -> None:
        self._handle_at = at
        self._handle = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._handle = None
        at = self._at
        if at is None:
            return
        if self._loop.time() < at:
            self._schedule(at)
            return
        self._at = None
        self._on_expire()
