"""The origin pool's state, as plain functions over plain values (httpcore's pool, minus the I/O).

Every method changes state and *returns* the connections the caller must close; the async shell
(:mod:`originlock.origin.pool`) does the closing. Nothing here awaits, reads a clock or touches a socket:
``now`` is passed in.

Policy:
- Idle connections are reused most-recently-used first (LIFO), so surplus connections age out.
- The pool grows with concurrency: when no idle connection matches, the caller dials a new one. There
  is no cap on busy connections; idle ones are capped per key (``max_idle_per_key``), so a burst leaves
  at most that many behind.
- Idle connections older than ``idle_timeout`` are closed (checked on checkout and by :meth:`expire`).
- :meth:`retire` closes idle connections whose key is no longer valid (a rotated client certificate)
  and marks busy ones so they are closed when returned, after their in-flight request finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["PoolState", "PoolStatistics"]

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")


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
    keys: int


class PoolState(Generic[K, C]):
    def __init__(self, *, max_idle_per_key: int, idle_timeout: float) -> None:
        if max_idle_per_key < 0 or idle_timeout <= 0:
            raise ValueError("max_idle_per_key must be >= 0 and idle_timeout > 0")
        self.max_idle_per_key = max_idle_per_key
        self.idle_timeout = idle_timeout
        self._idle: dict[K, list[tuple[C, float]]] = {}
        self._busy: dict[K, int] = {}
        self._retired: set[K] = set()
        self._opened = self._reused = self._closed = 0

    def checkout(self, key: K, now: float, usable: Callable[[C], bool]) -> tuple[C | None, list[C]]:
        """Take the freshest usable idle connection for ``key``.

        Returns:
            ``(connection or None, connections to close)``. With None the caller dials and then calls
            :meth:`opened`.
        """
        if self._retired:  # nearly always empty: skip hashing the 8-field key for it (per request)
            self._retired.discard(key)  # asked for again: the key is valid in the current snapshot
        to_close: list[C] = []
        idle = self._idle.get(key)
        found: C | None = None
        while idle:
            conn, since = idle.pop()
            if now - since < self.idle_timeout and usable(conn):
                found = conn
                break
            to_close.append(conn)
        if idle is not None and not idle:
            del self._idle[key]
        if found is not None:
            self._busy[key] = self._busy.get(key, 0) + 1
            self._reused += 1
        self._closed += len(to_close)
        return found, to_close

    def opened(self, key: K) -> None:
        """A new connection for ``key`` was dialled and is busy."""
        self._busy[key] = self._busy.get(key, 0) + 1
        self._opened += 1

    def checkin(self, key: K, conn: C, now: float, reusable: bool) -> list[C]:
        """A busy connection finished its exchange. Returns connections to close."""
        self._release(key)
        if not reusable or (self._retired and key in self._retired):
            self._closed += 1
            return [conn]
        idle = self._idle.setdefault(key, [])
        idle.append((conn, now))
        if len(idle) > self.max_idle_per_key:
            surplus = [c for c, _ in idle[: len(idle) - self.max_idle_per_key]]
            del idle[: len(idle) - self.max_idle_per_key]
            if not idle:
                del self._idle[key]
            self._closed += len(surplus)
            return surplus
        return []

    def discard(self, key: K) -> None:
        """A busy connection was closed by its user (error); it is no longer counted."""
        self._release(key)
        self._closed += 1

    def _release(self, key: K) -> None:
        left = self._busy.get(key, 0) - 1
        if left > 0:
            self._busy[key] = left
        else:
            self._busy.pop(key, None)

    def expire(self, now: float) -> list[C]:
        """Close idle connections older than ``idle_timeout``."""
        to_close: list[C] = []
        for key in list(self._idle):
            idle = self._idle[key]
            keep = [(c, t) for c, t in idle if now - t < self.idle_timeout]
            to_close.extend(c for c, t in idle if now - t >= self.idle_timeout)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        self._closed += len(to_close)
        return to_close

    def retire(self, keep: Callable[[K], bool]) -> list[C]:
        """Invalidate every key for which ``keep(key)`` is false: idle connections are returned for
        closing now; busy ones will be closed by :meth:`checkin`."""
        to_close: list[C] = []
        for key in [k for k in self._idle if not keep(k)]:
            to_close.extend(c for c, _ in self._idle.pop(key))
        self._retired.update(k for k in self._busy if not keep(k))
        self._closed += len(to_close)
        return to_close

    def drain(self) -> list[C]:
        """Everything idle, for shutdown."""
        to_close = [c for idle in self._idle.values() for c, _ in idle]
        self._idle.clear()
        self._closed += len(to_close)
        return to_close

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(
            idle=sum(len(v) for v in self._idle.values()),
            busy=sum(self._busy.values()),
            opened=self._opened,
            reused=self._reused,
            closed=self._closed,
            keys=len(set(self._idle) | set(self._busy)),
        )
