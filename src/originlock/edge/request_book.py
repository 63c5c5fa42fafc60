"""What the edge keeps about answered requests: counts by zone and status (for /metrics) and the access log."""

from __future__ import annotations

import time
from collections.abc import Callable

from originlock.edge.access_log import AccessLog
from originlock.pipeline.builtin.access_log import access_log_line
from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived

__all__ = ["RequestBook"]


class _Count:
    """One (zone, status) count: a native object whose integer is incremented in place, where a dict of
    counts boxes a new integer and hashes the status twice (a get and a set) per request."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class RequestBook:
    """LOG: every request ends here once, answered or not.

    Args:
        access_log: the sink.
        monotonic, wall: the clocks (``time.monotonic``, ``time.time``; injected by tests).
    """

    __slots__ = (
        "_by_status",
        "_count",
        "_monotonic",
        "_requests",
        "_status",
        "_wall",
        "_zone",
        "access_log",
        "logging",
    )

    def __init__(
        self,
        access_log: AccessLog,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.access_log = access_log
        #: Read per request: a plain attribute, where ``access_log.enabled`` is an interpreted property.
        self.logging = access_log.enabled
        #: Requests answered, by zone name, then status (``request_counts`` is the flat view for /metrics).
        self._requests: dict[str, dict[int, _Count]] = {}
        #: The last zone name counted (by identity: a route's own string) and its counts.
        self._zone: str | None = None
        self._by_status: dict[int, _Count] = {}
        #: The last status counted in that zone, and its count: a run of 200s is one comparison each.
        self._status = -1
        self._count = _Count()
        self._monotonic = monotonic
        self._wall = wall

    def log(self, ctx: RequestContext, request: RequestReceived | None) -> None:
        # Nested dicts rather than one keyed by (zone, status): no tuple to build, hash and compare per
        # request, and the zone name's hash is cached in the string.
        zone = ctx.route.zone_name if ctx.route is not None else ""
        status = ctx.status
        if zone is self._zone and status == self._status:
            self._count.n += 1
        else:
            self._counted(zone, status)
        if self.logging:
            self.access_log.write(access_log_line(ctx, request, self._monotonic(), self._wall()))

    def _counted(self, zone: str, status: int) -> None:
        """Count a request of another zone or status than the last one, and remember its count."""
        if zone is self._zone:
            by_status = self._by_status
        else:
            found = self._requests.get(zone)
            if found is None:
                found = self._requests[zone] = {}
            self._zone, self._by_status = zone, found
            by_status = found
        count = by_status.get(status)
        if count is None:
            count = by_status[status] = _Count()
        count.n += 1
        self._status, self._count = status, count

    @property
    def request_counts(self) -> dict[tuple[str, int], int]:
        """Requests answered, by (zone name, status; "" for requests without a zone): a new dict, read by
        the metrics collector at scrape time, possibly from another thread while the loop counts."""
        # Copies made in C (list() of a dict's items) and no loop over a live dict: in the interpreted
        # build another thread can run between bytecodes, and a dict that grows meanwhile would fail
        # the iteration.
        return {
            (zone, status): count.n
            for zone, by_status in list(self._requests.items())
            for status, count in list(by_status.items())
        }
