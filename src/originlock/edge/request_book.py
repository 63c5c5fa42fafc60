"""What the edge keeps about answered requests: counts by zone and status (for /metrics) and the access log."""

from __future__ import annotations

import time
from typing import Final

from originlock.edge.access_log import AccessLog
from originlock.pipeline.builtin.access_log import access_log_line
from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived

__all__ = ["RequestBook"]

#: The clocks as module constants: compiled, a call without looking ``time``'s attribute up per request.
_monotonic: Final = time.monotonic
_wall: Final = time.time


class RequestBook:
    """LOG: every request ends here once, answered or not."""

    def __init__(self, access_log: AccessLog) -> None:
        self.access_log = access_log
        #: Read per request: a plain attribute, where ``access_log.enabled`` is an interpreted property.
        self.logging = access_log.enabled
        #: Requests answered, by zone name, then status (``request_counts`` is the flat view for /metrics).
        self._requests: dict[str, dict[int, int]] = {}

    def log(self, ctx: RequestContext, request: RequestReceived | None) -> None:
        # Nested dicts rather than one keyed by (zone, status): no tuple to build, hash and compare per
        # request, and the zone name's hash is cached in the string.
        zone = ctx.route.zone_name if ctx.route is not None else ""
        by_status = self._requests.get(zone)
        if by_status is None:
            by_status = self._requests[zone] = {}
        status = ctx.status
        by_status[status] = by_status.get(status, 0) + 1
        if self.logging:
            self.access_log.write(access_log_line(ctx, request, _monotonic(), _wall()))

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
