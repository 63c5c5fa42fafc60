"""What ``--workers`` processes report to the serve process, and how ``/metrics`` adds it up (plain values).

Theory of operation. Every worker process sends the serve process, about once a second and once more after
its graceful shutdown, a :class:`WorkerReport`: its *cumulative* counters since it started (requests by zone
and status, its origin pool's statistics, WAF matches by zone and action with its latest WAF events).
Cumulative reports are idempotent, so a report that is skipped or lost costs freshness only: the next one
carries everything. The serve process keeps the latest report of each worker in a :class:`WorkerStatsBook`,
and at scrape time the book adds them to the serve process's own live counts (its edge counts in the same
process, so nothing has to be sent for it).

Counters stay monotonic. A worker's slot is closed when its channel reaches end of file, i.e. when the
process has exited, cleanly or not; its last report's counters are then folded into a *retired* total that
only grows, and its gauges (idle and busy connections, pool keys) are dropped, because its connections are
gone with it. A worker that exits and is replaced by a new process starting from zero therefore never makes
a sum go down. A worker that dies without a final report (SIGKILL, crash) loses what it counted since its
previous report, at most one reporting interval: the sum stalls, it does not decrease.

Everything here is plain values and a lock: the book is updated on the serve process's event loop and read
by the ``/metrics`` handler, which FastAPI runs in a thread.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Final, TypeVar

from originlock.origin.pool_state import PoolStatistics
from originlock.pipeline.waf_activity import RECENT_EVENTS, WafEvent, WafKey, newest_events

__all__ = ["ZERO_POOL", "RequestKey", "WorkerReport", "WorkerStatsBook", "add_counts", "add_pools"]

#: ``(zone name, status)``, the key of ``EdgeState.request_counts`` ("" for requests without a zone).
RequestKey = tuple[str, int]

ZERO_POOL: Final = PoolStatistics(idle=0, busy=0, opened=0, reused=0, closed=0, keys=0)
_POOL_FIELDS: Final = tuple(f.name for f in fields(PoolStatistics))


@dataclass(frozen=True)
class WorkerReport:
    """One worker's cumulative counters since it started, and its pool's current statistics."""

    #: Requests answered, by (zone name, status): a copy of the worker's ``EdgeState.request_counts``.
    requests: Mapping[RequestKey, int]
    #: The worker's ``OriginPool.statistics()``.
    pool: PoolStatistics
    #: WebSockets open now and upgrades relayed since start (edge/websocket.py ``WebSocketStats``).
    websockets: tuple[int, int] = (0, 0)
    #: Requests a WAF rule matched, by (zone name, action), and the worker's latest such events (newest
    #: first, at most ``RECENT_EVENTS``): empty unless the worker's WAF hook records (``serve``'s does).
    waf: Mapping[WafKey, int] = field(default_factory=dict)
    waf_events: tuple[WafEvent, ...] = ()

    @classmethod
    def of(
        cls,
        requests: Mapping[RequestKey, int],
        pool: PoolStatistics,
        websockets: tuple[int, int] = (0, 0),
        waf: Mapping[WafKey, int] | None = None,
        waf_events: tuple[WafEvent, ...] = (),
    ) -> WorkerReport:
        """A report from live values: ``requests`` is copied (the worker keeps incrementing its dict)."""
        return cls(dict(requests), pool, websockets, dict(waf or {}), waf_events)

    def encode(self) -> bytes:
        """One line of JSON (the channel's framing is one report per line)."""
        body = {"requests": [[zone, status, count] for (zone, status), count in self.requests.items()]}
        line = {**body, "pool": asdict(self.pool), "websockets": list(self.websockets)}
        if self.waf:
            line["waf"] = [[zone, action, count] for (zone, action), count in self.waf.items()]
            line["waf_events"] = [event.to_list() for event in self.waf_events]
        return json.dumps(line, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> WorkerReport:
        """The inverse of :meth:`encode`.

        Raises:
            ValueError: ``line`` is not a report.
        """
        data = json.loads(line)  # json.JSONDecodeError is a ValueError
        if not isinstance(data, dict) or not isinstance(data.get("requests"), list):
            raise ValueError("not a worker report")
        requests: dict[RequestKey, int] = {}
        for item in data["requests"]:
            match item:
                case [str(zone), int(status), int(count)] if count >= 0:
                    requests[(zone, status)] = count
                case _:
                    raise ValueError(f"bad request count in a worker report: {item!r}")
        pool = data.get("pool")
        if not isinstance(pool, dict) or sorted(pool) != sorted(_POOL_FIELDS):
            raise ValueError("bad pool statistics in a worker report")
        if not all(type(pool[name]) is int and pool[name] >= 0 for name in _POOL_FIELDS):
            raise ValueError("bad pool statistics in a worker report")
        match data.get("websockets", [0, 0]):  # absent from a report of an older worker
            case [int(active), int(upgrades)] if active >= 0 and upgrades >= 0:
                websockets = (active, upgrades)
            case other:
                raise ValueError(f"bad WebSocket counts in a worker report: {other!r}")
        waf: dict[WafKey, int] = {}
        for item in _list(data, "waf"):
            match item:
                case [str(zone), str(action), int(count)] if count >= 0:
                    waf[(zone, action)] = count
                case _:
                    raise ValueError(f"bad WAF count in a worker report: {item!r}")
        events = tuple(WafEvent.from_list(item) for item in _list(data, "waf_events")[:RECENT_EVENTS])
        return cls(requests, PoolStatistics(**pool), websockets, waf, events)


def _list(data: dict[str, object], name: str) -> list[object]:
    value = data.get(name, [])  # absent from a report without WAF activity (or of an older worker)
    if not isinstance(value, list):
        raise ValueError(f"bad {name} in a worker report")
    return value


_Key = TypeVar("_Key", RequestKey, WafKey)


def add_counts(*counts: Mapping[_Key, int]) -> dict[_Key, int]:
    """The per-key sum of counts (requests by zone and status, WAF matches by zone and action)."""
    total: dict[_Key, int] = {}
    for one in counts:
        for key, count in one.items():
            total[key] = total.get(key, 0) + count
    return total


def add_pools(*stats: PoolStatistics) -> PoolStatistics:
    """The field-by-field sum of pool statistics (each process has its own pool: keys add up too)."""
    return PoolStatistics(**{name: sum(getattr(one, name) for one in stats) for name in _POOL_FIELDS})


def _counters_only(stats: PoolStatistics) -> PoolStatistics:
    """What an exited worker still contributes: its counters, not its gauges (its connections are closed)."""
    return replace(stats, idle=0, busy=0, keys=0)


class WorkerStatsBook:
    """The latest report of every live worker, plus the counters of the workers that have exited.

    A slot per worker channel (:meth:`open_slot`), updated with every report and closed once when the
    channel ends (:meth:`retire`). Slots are never reused, so a restarted worker gets a new one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots = itertools.count(1)
        self._live: dict[int, WorkerReport | None] = {}
        self._retired_requests: dict[RequestKey, int] = {}
        self._retired_pool = ZERO_POOL
        self._retired_upgrades = 0
        self._retired_waf: dict[WafKey, int] = {}
        self._retired_events: list[WafEvent] = []

    def __repr__(self) -> str:
        with self._lock:
            return f"WorkerStatsBook(live={len(self._live)}, reporting={self._reporting()})"

    def open_slot(self) -> int:
        """A new slot for a worker that has not reported yet."""
        with self._lock:
            slot = next(self._slots)
            self._live[slot] = None
            return slot

    def update(self, slot: int, report: WorkerReport) -> None:
        """Keep ``report`` as the worker's latest (it replaces the previous one: both are cumulative).

        A report for a slot that was retired (or never opened) is ignored.
        """
        with self._lock:
            if slot in self._live:
                self._live[slot] = report

    def retire(self, slot: int) -> None:
        """The worker has exited: keep its counters for good and drop its gauges. Idempotent."""
        with self._lock:
            last = self._live.pop(slot, None)
            if last is not None:
                self._retired_requests = add_counts(self._retired_requests, last.requests)
                self._retired_pool = add_pools(self._retired_pool, _counters_only(last.pool))
                self._retired_upgrades += last.websockets[1]
                self._retired_waf = add_counts(self._retired_waf, last.waf)
                self._retired_events = newest_events(self._retired_events, last.waf_events)

    def request_counts(self, local: Mapping[RequestKey, int]) -> dict[RequestKey, int]:
        """Requests answered by the whole edge: ``local`` (the serve process's own live counts) plus
        every worker's latest report plus the workers that have exited."""
        own = dict(local)  # one C-level copy: the event loop may be counting in another thread
        with self._lock:
            reports = [report.requests for report in self._live.values() if report is not None]
            return add_counts(own, self._retired_requests, *reports)

    def pool_statistics(self, local: PoolStatistics) -> PoolStatistics:
        """Pool statistics of the whole edge: ``local`` plus every live worker's, plus the counters
        (opened, reused, closed) of the workers that have exited."""
        with self._lock:
            reports = [report.pool for report in self._live.values() if report is not None]
            return add_pools(local, self._retired_pool, *reports)

    def websocket_counts(self, local: tuple[int, int]) -> tuple[int, int]:
        """(WebSockets open, upgrades relayed) of the whole edge: ``local`` plus every live worker's, plus the
        upgrades of the workers that have exited (their WebSockets closed with them)."""
        with self._lock:
            reports = [report.websockets for report in self._live.values() if report is not None]
            active = local[0] + sum(one[0] for one in reports)
            return active, local[1] + self._retired_upgrades + sum(one[1] for one in reports)

    def waf_counts(self, local: Mapping[WafKey, int]) -> dict[WafKey, int]:
        """WAF matches of the whole edge by (zone, action): ``local`` plus every worker's, live or exited."""
        with self._lock:
            reports = [report.waf for report in self._live.values() if report is not None]
            return add_counts(local, self._retired_waf, *reports)

    def waf_events(self, local: list[WafEvent]) -> list[WafEvent]:
        """The newest WAF events of the whole edge (``local``: the serve process's own), newest first."""
        with self._lock:
            reports = [report.waf_events for report in self._live.values() if report is not None]
            return newest_events(local, self._retired_events, *reports)

    def reporting(self) -> int:
        """Live workers that have reported at least once (the serve process itself not included)."""
        with self._lock:
            return self._reporting()

    def _reporting(self) -> int:
        return sum(1 for report in self._live.values() if report is not None)
