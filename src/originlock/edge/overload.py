"""Shedding load at the edge's limits: visitor connections beyond ``--max-connections`` or the open-files
limit, and ``accept()`` failing with EMFILE, each reported in one log line per interval.

Theory of operation:

- Every accepted visitor connection first gets an ``Admission`` (``edge/admission.py``) as its protocol. It
  stands for the connection until its TLS handshake is done (at once for plain HTTP), then hands the
  transport to the real protocol (``transport.set_protocol``). The event loop drops a protocol whose
  handshake failed, so the admissions alive and not yet admitted are exactly the connections still in their
  handshake: each counts itself in when made and out when admitted or dropped, without a timer, and a
  scanner's failed handshakes stop counting as soon as they end.
- The capacity is ``min(--max-connections, (open-files limit - reserve) / 2)``, re-read every tick: each
  visitor connection may need an origin connection, and the reserve keeps room for the API, the store,
  logs and listeners, so the limit is reached before the process runs out of file descriptors. Beyond
  it a new connection gets a ``503`` with ``Retry-After`` and is closed (HTTPS: after its handshake, which
  the event loop does before any protocol code runs); existing connections are served as before.
- Should file descriptors run out anyway (the API, other processes' descriptors, a limit lowered at run
  time), the edge's listeners close the newest connections with a reserve descriptor
  (``edge/listeners.py``; uvloop's libuv does the same itself, silently), and asyncio's accept loop
  reports every failed ``accept()`` of other listeners (the API's; hundreds a second, each with a
  traceback: 163,548 in 10 s in the attack report). :func:`install_accept_error_filter` turns those
  reports into counts; :class:`OverloadLog` writes one line per kind and interval. The tick also tries to
  open a descriptor once a second (:func:`descriptors_exhausted`) and counts the seconds it could not.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
from collections.abc import Callable
from typing import Any, Final, cast

from originlock.edge.limits import EdgeLimits

__all__ = [
    "FD_RESERVE",
    "LOG_INTERVAL",
    "OverloadLog",
    "ShedConnection",
    "describe_overload",
    "descriptors_exhausted",
    "install_accept_error_filter",
    "raise_open_files_limit",
    "visitor_capacity",
]

log = logging.getLogger("originlock.edge")

#: File descriptors kept for everything but visitor and origin connections (API, store, logs, listeners,
#: the Python runtime's own).
FD_RESERVE: Final = 64
#: The smallest capacity the open-files limit can lower ``--max-connections`` to.
MIN_CAPACITY: Final = 8
#: Seconds between two lines about the same kind of overload.
LOG_INTERVAL: Final = 10.0
#: The open-files soft limit is raised to the hard one at start, but not beyond this.
MAX_OPEN_FILES: Final = 1 << 20
_ACCEPT_MESSAGE: Final = "socket.accept() out of system resource"
_SHED_BODY: Final = b"The edge is at its connection limit; please retry.\n"
_SHED_RESPONSE: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s" % (len(_SHED_BODY), _SHED_BODY)
)


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one (as Go's runtime does at start: the usual soft
    1024 is meant for ``select()``, which the edge does not use). Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def visitor_capacity(max_connections: int) -> int:
    """Visitor connections allowed now: ``max_connections``, lowered to fit the open-files limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return min(max_connections, max(MIN_CAPACITY, (soft - FD_RESERVE) // 2))


def descriptors_exhausted() -> bool:
    """Whether this process cannot open another file descriptor right now (one open and close)."""
    try:
        os.close(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as exc:
        return exc.errno in (errno.EMFILE, errno.ENFILE)
    return False


class OverloadLog:
    """Counts overload events by kind; :meth:`flush` logs one line per kind at most every ``interval``."""

    def __init__(self, clock: Callable[[], float], interval: float = LOG_INTERVAL) -> None:
        self._clock = clock
        self._interval = interval
        self._counts: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self.totals: dict[str, int] = {}
        #: Called at every count: wakes a parked tick (``edge/idle.py``), which logs the counts.
        self.noticed: Callable[[], None] | None = None

    def count(self, kind: str, number: int = 1) -> None:
        self._counts[kind] = self._counts.get(kind, 0) + number
        self.totals[kind] = self.totals.get(kind, 0) + number
        if self.noticed is not None:
            self.noticed()

    def pending(self) -> bool:
        """Whether some count waits for its log line (a later :meth:`flush` has something to do)."""
        return bool(self._counts)

    def flush(self, describe: Callable[[str, int], str]) -> None:
        """Log the kinds counted since their last line, for those whose interval has passed."""
        now = self._clock()
        for kind, number in list(self._counts.items()):
            if now - self._last.get(kind, -self._interval) >= self._interval:
                log.warning("%s", describe(kind, number))
                self._last[kind] = now
                del self._counts[kind]


def describe_overload(kind: str, count: int, limits: EdgeLimits, capacity: int) -> str:
    """The log line for ``count`` events of ``kind`` (see :class:`OverloadLog`)."""
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if kind == "shed":
        return (
            f"edge: {count} visitor connection(s) answered 503 and closed: at the limit of {capacity} open "
            f"connections (--max-connections {limits.max_connections}, open-files limit {files})"
        )
    if kind == "files":
        return (
            f"edge: at the open-files limit ({files}; {count} s since the last such line): new connections are "
            f"refused until descriptors are free; open connections are still served"
        )
    if kind == "accept":
        return (
            f"edge: out of file descriptors: {count} new connection(s) refused (open-files limit {files}); open "
            f"connections are still served"
        )
    return (
        f"edge: {count} request(s) answered 503: no origin connection within {limits.origin_queue_timeout:g} s "
        f"(--max-origin-connections {limits.max_origin_connections} per origin address)"
    )


class ShedConnection(asyncio.Protocol):
    """A visitor connection over the limit: a 503 (so the client sees why), then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.WriteTransport, transport)  # uvloop's transports do not subclass asyncio's
        writer.write(_SHED_RESPONSE)
        writer.close()


def install_accept_error_filter(loop: asyncio.AbstractEventLoop, overload: OverloadLog) -> None:
    """Count asyncio's "accept() out of system resource" reports instead of logging each with a traceback;
    everything else goes to the handler that was installed before."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == _ACCEPT_MESSAGE:
            overload.count("accept")
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
