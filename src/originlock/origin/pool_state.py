"""The origin pool's state, as plain functions over plain values (httpcore's pool, minus the I/O).

Every method changes state and *returns* the connections the caller must close; the async shell
(:mod:`originlock.origin.pool`) does the closing. Nothing here awaits, reads a clock or touches a socket:
``now`` is passed in. Checkout and checkin, once per request each, return the shared empty tuple when
there is nothing to close (nearly always) rather than a new empty list.

Policy:
- Idle connections are reused most-recently-used first (LIFO), so surplus connections age out.
- The pool grows with concurrency: when no idle connection matches, the caller dials a new one. There
  is no cap on busy connections; idle ones are capped per key (``max_idle_per_key``), so a burst leaves
  at most that many behind.
- Idle connections older than ``idle_timeout`` are closed (checked on checkout and by :meth:`expire`).
- :meth:`retire` closes idle connections whose key is no longer valid (a rotated client certificate, a
  strict trust superseded by a revocation) and marks busy ones so they are closed when returned, after
  their in-flight request finishes; the mark goes with the key's last connection.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

__all__ = ["PoolState", "PoolStatistics"]

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")

_NOTHING: Final[tuple[()]] = ()


@dataclass(frozen=True)
class PoolStatistics:
    """A frozen view of the pool's counters."""

    idle: int
    busy: int
    #: Connections dialled since start (a high rate relative to requests means churn).
    opened: int
    #: Requests served on a reused connection.
    reused: int
    closed: int
    #: Keys with connections, idle or busy.
    keys: int


class _Slot(Generic[C]):
    """One key's connections: its idle ones (oldest first) and how many are busy. One record per key so
    that a request costs one lookup of its (8-field, uncached-hash) key at checkout and one at checkin."""

    __slots__ = ("busy", "idle")

    def __init__(self) -> None:
        self.idle: list[tuple[C, float]] = []
        self.busy = 0


class PoolState(Generic[K, C]):
    def __init__(self, *, max_idle_per_key: int, idle_timeout: float) -> None:
        if max_idle_per_key < 0 or idle_timeout <= 0:
            raise ValueError("max_idle_per_key must be >= 0 and idle_timeout > 0")
        self.max_idle_per_key = max_idle_per_key
        self.idle_timeout = idle_timeout
        #: A key's slot stays while it has connections, busy or idle, and until the next :meth:`expire` once
        #: it has none: a new connection per request (an origin that closes after each response) then finds
        #: its key's slot by identity (below) at checkout, dial and checkin, where dropping the slot with the
        #: connection and adding it again at the next dial hashed the 8-field key five times per request.
        #: :meth:`retire` and :meth:`drain` drop empty slots too.
        self._slots: dict[K, _Slot[C]] = {}
        #: The key object last looked up and its slot: the next request usually goes to the same origin
        #: with the same key object (one per peer and snapshot), found by identity, where a lookup hashes
        #: the 8-field key (≈ 800 instructions, twice per request). Every removal from ``_slots`` goes
        #: through :meth:`_drop`, which forgets it, so it never names a slot that is not in ``_slots``.
        self._last_key: K | None = None
        self._last_slot: _Slot[C] | None = None
        self._retired: set[K] = set()
        self._opened = self._reused = self._closed = 0

    def _slot(self, key: K) -> _Slot[C] | None:
        if key is self._last_key:
            return self._last_slot
        slot = self._slots.get(key)
        if slot is not None:
            self._last_key, self._last_slot = key, slot
        return slot

    def _drop(self, key: K) -> None:
        if self._slots.pop(key) is self._last_slot:
            self._last_key = self._last_slot = None

    def checkout(self, key: K, now: float, usable: Callable[[C], bool]) -> tuple[C | None, Sequence[C]]:
        """Take the freshest usable idle connection for ``key``.

        Returns:
            ``(connection or None, connections to close)``. With None the caller dials and then calls
            :meth:`opened`.
        """
        if self._retired:  # nearly always empty: skip hashing the 8-field key for it (per request)
            self._retired.discard(key)  # asked for again: the key is valid in the current snapshot
        slot = self._slot(key)
        if slot is None:
            return None, _NOTHING
        to_close: list[C] | None = None
        idle = slot.idle
        found: C | None = None
        while idle:
            conn, since = idle.pop()
            if now - since < self.idle_timeout and usable(conn):
                found = conn
                break
            if to_close is None:
                to_close = []
            to_close.append(conn)
        if found is not None:
            slot.busy += 1
            self._reused += 1
        if to_close is None:
            return found, _NOTHING
        self._closed += len(to_close)
        return found, to_close

    def opened(self, key: K) -> None:
        """A new connection for ``key`` was dialled and is busy."""
        slot = self._slot(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
            self._last_key, self._last_slot = key, slot
        slot.busy += 1
        self._opened += 1

    def checkin(self, key: K, conn: C, now: float, reusable: bool) -> Sequence[C]:
        """A busy connection finished its exchange. Returns connections to close."""
        slot = self._slot(key)
        if slot is None:  # not counted as busy (cannot happen through OriginPool): keep the books right
            slot = self._slots[key] = _Slot()
        else:
            slot.busy = max(slot.busy - 1, 0)
        idle = slot.idle
        if not reusable or (self._retired and key in self._retired):
            self._closed += 1
            if self._retired and not idle and not slot.busy:
                # A retired key's last connection: forget the key (and its slot, which no valid key will
                # ask for), or every checkout would keep hashing its key for the set (see checkout).
                self._retired.discard(key)
                self._drop(key)
            return [conn]
        idle.append((conn, now))
        if len(idle) > self.max_idle_per_key:
            surplus = [c for c, _ in idle[: len(idle) - self.max_idle_per_key]]
            del idle[: len(idle) - self.max_idle_per_key]
            if not idle and not slot.busy:
                self._drop(key)
            self._closed += len(surplus)
            return surplus
        return _NOTHING

    def discard(self, key: K) -> None:
        """A busy connection was closed by its user (error); it is no longer counted."""
        slot = self._slot(key)
        if slot is not None:
            slot.busy = max(slot.busy - 1, 0)
            if self._retired and not slot.idle and not slot.busy:
                self._retired.discard(key)  # as in checkin
                self._drop(key)
        self._closed += 1

    def evict_idle(self, match: Callable[[K], bool]) -> C | None:
        """Take the oldest idle connection of any key for which ``match(key)`` holds, for the caller to
        close (making room under a per-origin limit); None when there is none. Scans every key: only
        called when a limit is reached."""
        for key, slot in list(self._slots.items()):
            if slot.idle and match(key):
                conn, _ = slot.idle.pop(0)
                if not slot.idle and not slot.busy:
                    self._drop(key)
                self._closed += 1
                return conn
        return None

    def expire(self, now: float) -> list[C]:
        """Close idle connections older than ``idle_timeout``; forget the keys left without connections."""
        to_close: list[C] = []
        for key, slot in list(self._slots.items()):
            idle = slot.idle
            to_close.extend(c for c, t in idle if now - t >= self.idle_timeout)
            idle[:] = [(c, t) for c, t in idle if now - t < self.idle_timeout]
            if not idle and not slot.busy:
                self._drop(key)
        self._closed += len(to_close)
        return to_close

    def retire(self, keep: Callable[[K], bool]) -> list[C]:
        """Invalidate every key for which ``keep(key)`` is false: idle connections are returned for
        closing now; busy ones will be closed by :meth:`checkin`."""
        to_close: list[C] = []
        for key, slot in list(self._slots.items()):
            if keep(key):
                continue
            to_close.extend(c for c, _ in slot.idle)
            slot.idle.clear()
            if slot.busy:
                self._retired.add(key)
            else:
                self._drop(key)
        self._closed += len(to_close)
        return to_close

    def drain(self) -> list[C]:
        """Everything idle, for shutdown."""
        to_close: list[C] = []
        for key, slot in list(self._slots.items()):
            to_close.extend(c for c, _ in slot.idle)
            slot.idle.clear()
            if not slot.busy:
                self._drop(key)
        self._closed += len(to_close)
        return to_close

    def statistics(self) -> PoolStatistics:
        slots = self._slots.values()
        return PoolStatistics(
            idle=sum(len(s.idle) for s in slots),
            busy=sum(s.busy for s in slots),
            opened=self._opened,
            reused=self._reused,
            closed=self._closed,
            keys=sum(1 for s in slots if s.idle or s.busy),  # empty slots wait for expire()
        )
