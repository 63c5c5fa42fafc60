"""What the edge keeps about answered requests: counts by zone and status (for /metrics) and the access log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from originlock.edge.access_log import AccessLog
from originlock.pipeline.builtin.access_log import access_log_line
from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived

__all__ = ["WALL_CLOCK_RESYNC", "RequestBook"]

#: Seconds of the monotonic clock during which a line's wall time is that clock plus the last measured
#: difference, before the wall clock is read again. The two clocks run at the same rate (NTP slews both);
#: only a step of the wall clock (``settimeofday``, a VM resumed) moves the difference, and the lines show
#: it at most this late. nginx's precedent: its log time is a cache refreshed once per event-loop turn (or
#: per ``timer_resolution``).
WALL_CLOCK_RESYNC: Final = 1.0


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
        "_wall_offset",
        "_wall_until",
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
        #: ``wall() - monotonic()`` as last measured, used until the monotonic clock reaches ``_wall_until``.
        self._wall_offset = 0.0
        self._wall_until = -1.0

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
            # One clock read per line: the wall time is derived from the monotonic one (WALL_CLOCK_RESYNC).
            now = self._monotonic()
            if now < self._wall_until:
                wall = now + self._wall_offset
            else:
                wall = self._wall()
                self._wall_offset = wall - now
                self._wall_until = now + WALL_CLOCK_RESYNC
            self.access_log.write(access_log_line(ctx, request, now, wall))

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
