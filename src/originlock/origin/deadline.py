"""A re-armable deadline that costs no timer operation in the common case.

Every keep-alive exchange needs a timeout (origin read, visitor idle), but almost none of them fire.
``loop.call_later`` + ``cancel`` per wait allocates a ``TimerHandle`` and starts and stops a libuv timer
each time; in the edge benchmark that was two pairs per request. A :class:`Deadline` keeps at most one
scheduled callback: :meth:`arm` only records the new expiry time when a callback is already scheduled
no later than it, :meth:`disarm` only forgets the time; when the callback runs early (the deadline
moved) it re-schedules itself for the recorded time. The result is at most one timer operation per
timeout *period* per connection instead of two per request.

:class:`TimerWheel` goes further for visitor connections, which are many and short-lived: their
deadlines share one loop timer, to :data:`WHEEL_RESOLUTION` seconds. So do origin dials' connect timeouts
and origin connections' read timeouts (origin/connector.py: a new origin connection per request would
otherwise start and cancel two loop timers).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Final

__all__ = ["WHEEL_RESOLUTION", "Deadline", "TimerWheel", "WheelDeadline"]


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


#: Granularity of :class:`TimerWheel` deadlines: one fires between its time and this much later. Visitor
#: timeouts are seconds long (nginx's client_header_timeout/keepalive_timeout: 60 s / 75 s); nginx itself
#: offers ``timer_resolution`` for the same trade (fewer timer operations, coarser expiry).
#: ``Final``: compiled, a static read, where a plain module global is a dict lookup per arm.
WHEEL_RESOLUTION: Final = 0.05


class TimerWheel:
    """The deadlines of many visitor connections behind one event-loop timer.

    A :class:`Deadline` schedules a loop timer per connection (a ``TimerHandle`` made, started, cancelled
    and freed for every new visitor connection: ≈ 12k instructions, issue 11). Here deadlines are kept in
    buckets of :data:`WHEEL_RESOLUTION` seconds and the loop timer runs for the earliest bucket only: a new
    connection's deadline lands in a later bucket than the ones already scheduled, so arming it is a dict
    insert, and the loop timer is touched once per bucket, not per connection.
    """

    __slots__ = ("_buckets", "_handle", "_handle_slot", "_loop", "_order", "_time")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        #: ``loop.time`` bound once: every arm reads the clock (a pooled request arms twice, the origin read
        #: timeout and the visitor's idle time), and a method call by name looks the method up and binds it
        #: each time (docs/performance.md, issue 11, pooled5).
        self._time: Callable[[], float] = loop.time
        #: slot (a multiple of the resolution) -> deadlines due then (a dict: removal is O(1), order kept).
        self._buckets: dict[int, dict[WheelDeadline, None]] = {}
        #: The slots of the buckets, as a heap: the earliest first.
        self._order: list[int] = []
        self._handle: asyncio.TimerHandle | None = None
        self._handle_slot = 0

    def deadline(self, on_expire: Callable[[], None]) -> WheelDeadline:
        return WheelDeadline(self, on_expire)

    def __len__(self) -> int:
        """Deadlines registered (armed, or disarmed and not yet passed by their bucket)."""
        return sum(len(bucket) for bucket in self._buckets.values())

    def _add(self, deadline: WheelDeadline, slot: int) -> None:
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = {}
            heapq.heappush(self._order, slot)
            handle = self._handle
            if handle is None or slot < self._handle_slot:
                if handle is not None:
                    handle.cancel()
                self._handle_slot = slot
                self._handle = self._loop.call_at(slot * WHEEL_RESOLUTION, self._fire)
        bucket[deadline] = None

    def _remove(self, deadline: WheelDeadline, slot: int) -> None:
        bucket = self._buckets.get(slot)
        if bucket is not None:
            bucket.pop(deadline, None)

    def _fire(self) -> None:
        self._handle = None
        now = self._time()
        # The bucket this timer was set for, even if the loop ran it a hair early; taken out before any
        # deadline runs, so re-registered and newly armed deadlines wait for the next round.
        limit = max(self._handle_slot, int(now / WHEEL_RESOLUTION))
        order = self._order
        due: list[tuple[int, dict[WheelDeadline, None]]] = []
        while order and order[0] <= limit:
            slot = heapq.heappop(order)
            due.append((slot, self._buckets.pop(slot)))
        for slot, bucket in due:
            for deadline in bucket:
                deadline._due(slot, now)
        self._restart()

    def _restart(self) -> None:
        """After a round: the timer for the earliest bucket left. A deadline registered again in the round
        may have started it for its own, later bucket. (A method of its own: within ``_fire``, which set
        ``_handle`` to None, mypy keeps it narrowed to None across the calls that set it again, and the
        compiled code would reject the handle.)"""
        order = self._order
        buckets = self._buckets
        # Buckets whose deadlines all left (cancelled: every origin dial's connect deadline, a closed
        # connection's read deadline) are dropped here rather than woken for: once traffic stops, the loop
        # timer would otherwise run once per bucket for as long as the longest timeout (120 s).
        while order and not buckets[order[0]]:
            del buckets[heapq.heappop(order)]
        handle = self._handle
        if order and (handle is None or self._handle_slot > order[0]):
            if handle is not None:
                handle.cancel()
            self._handle_slot = order[0]
            self._handle = self._loop.call_at(order[0] * WHEEL_RESOLUTION, self._fire)


class WheelDeadline:
    """:class:`Deadline`'s interface (``arm``, ``disarm``, ``cancel``, ``armed``) on a :class:`TimerWheel`."""

    __slots__ = ("_armed", "_at", "_on_expire", "_slot", "_wheel")

    def __init__(self, wheel: TimerWheel, on_expire: Callable[[], None]) -> None:
        self._wheel = wheel
        self._on_expire = on_expire
        #: The expiry time, read only while ``_armed``: a plain float and a flag rather than ``float | None``,
        #: which compiled is a float object made (and freed) per arm.
        self._at = 0.0
        self._armed = False
        #: The bucket this deadline is registered in; 0: none.
        self._slot = 0

    @property
    def armed(self) -> bool:
        return self._armed

    def arm(self, timeout: float) -> None:
        """Expire ``timeout`` seconds from now (replacing any earlier arming)."""
        at = self._at = self._wheel._time() + timeout
        self._armed = True
        slot = int(at / WHEEL_RESOLUTION) + 1
        registered = self._slot
        if registered and registered <= slot:
            return  # its bucket comes first: _due finds the later time and registers again
        if registered:
            self._wheel._remove(self, registered)
        self._slot = slot
        self._wheel._add(self, slot)

    def disarm(self) -> None:
        self._armed = False

    def cancel(self) -> None:
        """Disarm and leave the wheel (when the owner goes away); forgets ``on_expire`` (see Deadline)."""
        self._armed = False
        self._on_expire = _nothing
        if self._slot:
            self._wheel._remove(self, self._slot)
            self._slot = 0

    def _due(self, slot: int, now: float) -> None:
        if slot != self._slot:
            return
        self._slot = 0
        if not self._armed:
            return
        at = self._at
        if at > now:  # armed again for later meanwhile
            self._slot = int(at / WHEEL_RESOLUTION) + 1
            self._wheel._add(self, self._slot)
            return
        self._armed = False
        self._on_expire()
