"""What the WAF did in one edge process: requests a rule matched, counted by zone and action, and the latest
events (plain values and a lock).

Each edge process records its own (the dashboard's recorder wraps the WAF hook, and every ``--workers``
process has its own copy). A worker sends its counts and latest events to the serve process with its
periodic report (``edge/worker_stats.py``), where the dashboard and ``/metrics`` add them up. Both are
*cumulative* views (counts since start, the newest events), so a report that is skipped or lost costs
freshness, never a count.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from typing import Any, Final, Protocol, runtime_checkable

__all__ = ["RECENT_EVENTS", "RecordingHook", "WafActivity", "WafEvent", "WafKey", "newest_events"]

#: How many events the dashboard can show: a screenful, and a bounded amount of memory (and of each report).
RECENT_EVENTS: Final = 200

#: ``(zone name, action)``.
WafKey = tuple[str, str]


@dataclass(frozen=True)
class WafEvent:
    """One request a WAF rule matched."""

    #: Seconds since the epoch.
    at: float
    ray_id: str
    zone: str
    zone_id: str
    host: str
    method: str
    path: str
    #: The terminating action (``block``...) or, for a request that went on, the first matched rule's
    #: action (``log``, ``skip``).
    action: str
    rule_id: str
    phase: str

    def to_list(self) -> list[Any]:
        """The fields in order: a compact JSON form for the worker reports."""
        return list(astuple(self))

    @classmethod
    def from_list(cls, item: object) -> WafEvent:
        """The inverse of :meth:`to_list`. Raises ValueError on anything else."""
        names = [f.name for f in fields(cls)]
        if not isinstance(item, list) or len(item) != len(names):
            raise ValueError(f"not a WAF event: {item!r}")
        at, *text = item
        if isinstance(at, bool) or not isinstance(at, int | float) or not all(isinstance(s, str) for s in text):
            raise ValueError(f"not a WAF event: {item!r}")
        return cls(float(at), *text)


def newest_events(*lists: Iterable[WafEvent]) -> list[WafEvent]:
    """The newest :data:`RECENT_EVENTS` of several processes' events, newest first."""
    merged = [event for one in lists for event in one]
    merged.sort(key=lambda event: event.at, reverse=True)
    return merged[:RECENT_EVENTS]


class WafActivity:
    """One process's WAF matches: counts by (zone, action) and the latest events.

    Written on the event loop, read by ``/metrics`` and the dashboard from the API's threadpool (or by the
    worker's reporter): hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[WafKey, int] = {}
        self._recent: deque[WafEvent] = deque(maxlen=RECENT_EVENTS)

    def __repr__(self) -> str:
        with self._lock:
            return f"WafActivity(matched={sum(self._counts.values())})"

    def record(self, event: WafEvent) -> None:
        with self._lock:
            key = (event.zone, event.action)
            self._counts[key] = self._counts.get(key, 0) + 1
            self._recent.append(event)

    def counts(self) -> dict[WafKey, int]:
        """Matched requests so far, by (zone name, action)."""
        with self._lock:
            return dict(self._counts)

    def recent(self) -> list[WafEvent]:
        """The latest events, newest first."""
        with self._lock:
            return list(reversed(self._recent))


@runtime_checkable
class RecordingHook(Protocol):
    """A WAF hook that records what it decided (the dashboard's recorder): a worker reports its activity."""

    activity: WafActivity
