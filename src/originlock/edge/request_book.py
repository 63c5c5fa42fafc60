"""What the edge keeps about answered requests: counts by zone and status (for /metrics) and the access log."""

from __future__ import annotations

import time
from collections.abc import Callable

from originlock.edge.access_log import AccessLog
from originlock.pipeline.builtin.access_log import access_log_line
from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived

__all__ = ["RequestBook"]


class RequestBook:
    """LOG: every request ends here once, answered or not.

    Args:
        access_log: the sink.
        monotonic, wall: the clocks (``time.monotonic``, ``time.time``; injected by tests).
    """

    __slots__ = (
        "_by_status",
        "_monotonic",
        "_requests",
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
        self._requests: dict[str, dict[int, int]] = {}
        #: The last zone name counted (by identity: a route's own string) and its counts.
        self._zone: str | None = None
        self._by_status: dict[int, int] = {}
        self._monotonic = monotonic
        self._wall = wall

    def log(self, ctx: RequestContext, request: RequestReceived | None) -> None:
        # Nested dicts rather than one keyed by (zone, status): no tuple to build, hash and compare per
        # request, and the zone name's hash is cached in the string.
        zone = ctx.route.zone_name if ctx.route is not None else ""
        if zone is self._zone:
            by_status = self._by_status
        else:
            found = self._requests.get(zone)
            if found is None:
                found = self._requests[zone] = {}
            self._zone, self._by_status = zone, found
            by_status = found
        status = ctx.status
        by_status[status] = by_status.get(status, 0) + 1
        if self.logging:
            self.access_log.write(access_log_line(ctx, request, self._monotonic(), self._wall()))

    @property
    def request_counts(self) -> dict[tuple[str, int], int]:
        """Requests answered, by (zone name, status; "" for requests without a zone): a new dict, read by
        the metrics collector at scrape time, possibly from another thread while the loop counts."""
        # Copies made in C (list() of a dict's items) and no loop over a live dict: in the interpreted
        # build another thread can run between bytecodes, and a dict that grows meanwhile would fail
        # the iteration.
        return {
            (zone, status): count
            for zone, by_status in list(self._requests.items())
            for status, count in list(by_status.items())
        }
