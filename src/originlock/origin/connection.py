"""One keep-alive connection to an origin: an asyncio ``Protocol`` feeding the sans-IO response parser.

Resource handling: the connection belongs to the pool while idle and to exactly one exchange while busy
(:meth:`start_exchange` ... :meth:`finish_exchange`). Error handling: socket and TLS failures arrive in
``connection_lost`` and are translated here, once, into the edge's error tree: a TLS error before any
response byte is 525 (TLS 1.3 origins reject a missing or untrusted client certificate with an alert
*after* the client finished its handshake); an EOF or reset before any response byte on a *reused*
connection is marked retryable (the origin closed it while idle); anything else is 520.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Final, Protocol, cast

from originlock.errors import EdgeError, OriginBadResponse, OriginHandshakeFailed, OriginTimeout
from originlock.origin.deadline import TimerWheel
from originlock.origin.peer import PoolKey
from originlock.proto.events import Event
from originlock.proto.http1 import DEFAULT_LIMITS, Limits, ResponseParser

__all__ = ["OriginConnection"]

#: Parsed-but-unconsumed response bytes above which reading from the origin pauses.
READ_HIGH_WATER: Final = 256 * 1024


def _nothing() -> None:
    return None


class ConnectWatch(Protocol):
    """What a connection being dialled tells when its connect timeout passes (origin/connector.py's dial)."""

    def connect_expired(self) -> None: ...


class OriginConnection(asyncio.Protocol):
    def __init__(
        self, loop: asyncio.AbstractEventLoop, limits: Limits = DEFAULT_LIMITS, timers: TimerWheel | None = None
    ) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = ResponseParser(limits)
        self.key: PoolKey | None = None
        self.exchanges = 0
        self.closed = False
        #: Parsed events of the current exchange not consumed yet: a list, usually the very list the parser
        #: returned (a complete response in one read is handed over, not copied into a queue).
        self._events: list[Event] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: EdgeError | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._in_exchange = False
        self._read_paused = False
        #: The read timeout (524), on the connector's timer wheel (origin/deadline.py): a new connection
        #: per request costs a dict insert there, where a loop timer of its own cost a ``TimerHandle`` made,
        #: started and cancelled per connection. A connection made without one (tests, benchmarks) has a
        #: wheel of its own.
        self._read_deadline = (timers if timers is not None else TimerWheel(loop)).deadline(self._read_expired)
        #: The dial this connection is being made by, while it is (:meth:`watch_connect`): the read deadline
        #: is its connect timeout until then. One deadline per dial instead of two, and the read timeout's
        #: first arm finds the deadline already registered in an earlier bucket (docs/performance.md,
        #: issue 11, dial4).
        self._dialling: ConnectWatch | None = None
        #: Callback-driven exchanges (``edge/exchange.py``) are told about new events, errors and the
        #: read timeout through this instead of a future: no task switch per response.
        self.listener: Callable[[], None] | None = None
        #: What :meth:`write_soon` writes when the grouped sends run, and the method that does it, bound
        #: once per connection (:meth:`_release` drops it: it holds this connection).
        self._soon = b""
        self._write_soon_bound: Callable[[], None] = self._write_queued

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement its interface.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._in_exchange:
            self._fail(OriginBadResponse("the origin sent data while no request was pending"))
            return
        try:
            events = self.parser.feed(data)
        except EdgeError as exc:
            self._fail(exc)
            return
        if events:
            if self._events:
                self._events.extend(events)
            else:
                self._events = events  # the parser made it for this read and keeps no reference
            self._buffered += len(data)
            if self._buffered > READ_HIGH_WATER and not self._read_paused and self.transport is not None:
                self._read_paused = True
                self.transport.pause_reading()
            self._wake()

    def eof_received(self) -> bool:
        if self._in_exchange:
            try:
                self._events.extend(self.parser.feed_eof())
            except EdgeError as exc:
                self._error = self._error or self._relabel(exc, None)
            self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._in_exchange and not self.parser.done and self._error is None:
            self._error = self._relabel(OriginBadResponse("the origin closed the connection"), exc)
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        self._release()

    def _release(self) -> None:
        """Break the reference cycles of a closed connection, so that reference counting frees it when its
        last user lets go instead of the cyclic garbage collector some time later (issue 11: a dial per
        request left ~44 objects per connection to it). The parser's llhttp parser holds the parser's
        bound callbacks; the deadline holds a bound method of this connection; the transport holds this
        protocol. Events already parsed, the error and ``parser.done`` stay readable."""
        self.parser.release()
        self._read_deadline.cancel()
        self._dialling = None
        self._write_soon_bound = _nothing
        self.transport = None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # -- used by the exchange ----------------------------------------------------------------------

    def _relabel(self, error: EdgeError, exc: BaseException | None) -> EdgeError:
        if self.parser.received_any:
            return error
        if isinstance(exc, ssl.SSLError):
            new: EdgeError = OriginHandshakeFailed(f"the origin ended the TLS session: {exc}")
            new.__cause__ = exc
            return new
        if self.exchanges > 1:  # reused connection that died while idle
            error.retryable = True
        return error

    def _fail(self, error: EdgeError) -> None:
        self._error = self._error or error
        self.close()
        self._wake()

    def _wake(self) -> None:
        listener = self.listener
        if listener is not None:
            listener()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def watch_connect(self, dial: ConnectWatch, timeout: float) -> None:
        """Tell ``dial`` (its ``connect_expired``) when ``timeout`` seconds pass before :meth:`connect_over`."""
        self._dialling = dial
        self._read_deadline.arm(timeout)

    def connect_over(self) -> None:
        """The dial is over (established or failed): the deadline is the read timeout's again, disarmed."""
        self._dialling = None
        self._read_deadline.disarm()

    def arm_read_timeout(self, timeout: float) -> None:
        """Start the read timeout of a callback-driven exchange (524 through ``listener``)."""
        self._read_deadline.arm(timeout)

    def disarm_read_timeout(self) -> None:
        self._read_deadline.disarm()

    def _read_expired(self) -> None:
        dialling = self._dialling
        if dialling is not None:
            self._dialling = None
            dialling.connect_expired()
            return
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_exception(OriginTimeout("the origin did not respond in time"))
        elif self.listener is not None and self._in_exchange:
            self._error = self._error or OriginTimeout("the origin did not respond in time")
            self.listener()

    @property
    def pending(self) -> list[Event]:
        """Parsed events of the current exchange not consumed yet (read-only use)."""
        return self._events

    @property
    def error(self) -> EdgeError | None:
        """The failure of the current exchange, once known."""
        return self._error

    def usable(self) -> bool:
        """Idle and still open (the pool's check before reuse)."""
        return not self.closed and not self._events and self.transport is not None and not self.transport.is_closing()

    def start_exchange(self, method: bytes) -> None:
        self.parser.start(method)
        self._in_exchange = True
        self._error = None
        self._events.clear()
        self._buffered = 0
        self.exchanges += 1

    def finish_exchange(self, keep_alive: bool) -> bool:
        """End the exchange; returns whether the connection can go back to the pool."""
        self._in_exchange = False
        if self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = False
            self.transport.resume_reading()
        return keep_alive and self.parser.done and not self.parser.extra_data and not self.closed and not self._events

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise self._error or self._relabel(OriginBadResponse("the origin connection is closed"), None)
        self.transport.write(data)

    def write_soon(self, data: bytes, send_soon: Callable[[Callable[[], None]], None]) -> None:
        """Write ``data`` with this event-loop iteration's grouped sends (``send_soon``); nothing is written
        if the connection closes before they run (its listener hears of it)."""
        self._soon = data
        send_soon(self._write_soon_bound)

    def _write_queued(self) -> None:
        data, self._soon = self._soon, b""
        if data and not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self, timeout: float) -> None:
        """Wait until the origin accepted buffered request bytes (Proxy Write Timeout -> 524)."""
        if not self._write_paused or self.closed:
            return
        self._drain_waiter = self._loop.create_future()
        handle = self._loop.call_later(timeout, self._drain_waiter.cancel)
        try:
            await self._drain_waiter
        except asyncio.CancelledError:
            if self._drain_waiter.cancelled() and not self.closed:
                raise OriginTimeout("the origin did not accept the request body in time") from None
            raise
        finally:
            handle.cancel()
            self._drain_waiter = None

    def consume_pending(self) -> None:
        """Every pending event was taken at once (a complete response handled in one go)."""
        self._events.clear()
        self._drained()

    def _drained(self) -> None:
        self._buffered = 0
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()

    def next_event_nowait(self) -> Event | None:
        if self._events:
            event = self._events.pop(0)  # short: reading pauses above READ_HIGH_WATER
            if not self._events:
                self._drained()
            return event
        if self._error is not None:
            raise self._error
        return None

    async def next_event(self, timeout: float) -> Event:
        """The next response event, waiting at most ``timeout`` seconds (524 after that)."""
        while True:
            event = self.next_event_nowait()
            if event is not None:
                return event
            if self.closed:
                raise self._relabel(OriginBadResponse("the origin closed the connection"), None)
            waiter = self._waiter = self._loop.create_future()
            self._read_deadline.arm(timeout)
            try:
                await waiter
            finally:
                self._read_deadline.disarm()
                self._waiter = None

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True
        # connection_lost does this too, but a connection closed during its TLS handshake never gets it
        # (start_tls had not handed it the transport yet).
        self._release()
