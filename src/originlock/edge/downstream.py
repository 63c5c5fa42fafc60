"""One visitor connection: an asyncio ``Protocol`` that feeds the sans-IO request parser and serves
its requests one after another.

Parsing happens in ``data_received`` (pipelined requests queue up as events, in order). One request is
served at a time, so responses are always written in request order and never interleave: either from
the callbacks themselves (``edge/fastpath.py``) or, when a request needs to wait for something other
than its response, by a task for that request (``run_task``); :meth:`request_done` then takes the next
queued request. The visitor idle timeout is a :class:`~originlock.origin.deadline.Deadline`. Reading
pauses when more than :data:`READ_HIGH_WATER` bytes of parsed events are waiting (a visitor that uploads
faster than the origin accepts is slowed down rather than buffered). A protocol error is queued after
the events that preceded it, so earlier requests are still answered before the 400.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, cast

from originlock.edge.fastpath import begin
from originlock.errors import DownstreamError, EdgeError
from originlock.origin.deadline import Deadline
from originlock.proto.events import BodyReceived, Event, MessageEnded, RequestReceived
from originlock.proto.http1 import RequestParser

if TYPE_CHECKING:
    from originlock.edge.server import EdgeState

__all__ = ["DownstreamConnection"]

#: Parsed-but-unconsumed request bytes above which the edge stops reading from the visitor.
READ_HIGH_WATER: Final = 256 * 1024


class _Closed:
    """Sentinel queued when the visitor half-closed or the connection ended."""


_CLOSED: Final = _Closed()


class DownstreamConnection(asyncio.Protocol):
    def __init__(self, state: EdgeState, scheme: str) -> None:
        self.state = state
        self.scheme = scheme
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.client_port = 0
        self.sni: str | None = None
        self.tls_version: str | None = None
        self.parser = RequestParser(state.limits)
        self.closed = False
        self._queue: deque[Event | EdgeError | _Closed] = deque()
        self._buffered = 0
        self._read_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._out: list[bytes] = []
        #: A request is being answered (by the callbacks or a task).
        self._busy = False
        self._idle = Deadline(state.loop, self._idle_expired)
        #: Bytes of the next request head have arrived (the header timeout runs, not the idle one).
        self._head_started = False
        #: The request being answered came with its end and was never queued (see ``request_consumed``).
        self.request_complete = False

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement its interface.
        self.transport = cast(asyncio.Transport, transport)
        peer = self.transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client_ip, self.client_port = str(peer[0]), int(peer[1])
        ssl_obj = self.transport.get_extra_info("ssl_object")
        if isinstance(ssl_obj, ssl.SSLObject):
            self.sni = ssl_obj.server_hostname
            self.tls_version = ssl_obj.version()
        self.state.connections.add(self)
        self._serve_next()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.parser.feed(data)
        except DownstreamError as exc:
            # Requests completed in this read before the error are answered first, then the error.
            self._queue.extend(self.parser.complete_events())
            self._queue.append(exc)
            self._pause()
            self._wake()
            return
        if events:
            if len(events) == 2 and not self._busy and not self._queue and not self.state.draining:
                request, end = events
                if isinstance(request, RequestReceived) and request.body == "none" and isinstance(end, MessageEnded):
                    # The usual read: one whole request without a body, nothing queued before it and none
                    # being answered. Served straight away rather than through the queue. A chunked request
                    # whose empty body came along also gives two events, but the body path must see its end
                    # (MessageEnded, which writes the last chunk): it goes through the queue.
                    self.request_complete = True
                    if self._serve(request):
                        self._serve_next()
                    return
            self._queue.extend(events)
            self._buffered += len(data)
            if self._buffered > READ_HIGH_WATER:
                self._pause()
            self._wake()
        elif not self._busy and not self._head_started and data:
            # The first bytes of a request head: from now on the head must be complete within the header
            # timeout (nginx's client_header_timeout), however the idle time was going; later bytes of the
            # same head extend nothing, so a trickling head cannot hold the connection.
            self._head_started = True
            self._idle.arm(self.state.header_timeout)

    def eof_received(self) -> bool:
        self._queue.append(_CLOSED)
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._queue.append(_CLOSED)
        self._wake()
        self._idle.cancel()
        self.state.connections.discard(self)
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # -- used by the serving task --------------------------------------------------------------

    def _pause(self) -> None:
        if not self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = True
            self.transport.pause_reading()

    def _wake(self) -> None:
        """Something was queued: the request's task is told; an idle connection serves it now."""
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
        elif not self._busy:
            self._serve_next()

    # -- serving requests in order ---------------------------------------------------------------

    def _serve_next(self) -> None:
        """Answer queued requests until one is pending or the queue is empty (then wait, idle)."""
        state = self.state
        while True:
            if self.closed:
                # Requests still queued behind one that closed the connection (a 400, Connection: close, an
                # Upgrade) are never served: serving them would forward them to an origin.
                return
            if state.draining:
                self.close()
                return
            try:
                event = self.next_event_nowait()
            except DownstreamError as exc:
                state.reject(self, exc)
                self.close()
                return
            if event is None:
                if self.at_eof or self.closed:
                    self.close()
                elif not self._idle.armed:  # partial data does not extend the idle (or header) time
                    self._idle.arm(state.idle_timeout)
                return
            if not isinstance(event, RequestReceived):
                self.close()
                return
            self.request_complete = False
            if not self._serve(event):
                return

    def _serve(self, request: RequestReceived) -> bool:
        """Start answering ``request``; True when it was answered at once and the connection stays open."""
        self._idle.disarm()
        self._head_started = False
        self._busy = True
        try:
            keep_alive = begin(self, request, self.state)
        except BaseException:
            self.close()
            raise
        if keep_alive is None:
            return False  # answered later: request_done() continues
        self._busy = False
        if not keep_alive:
            self.close()
            return False
        return True

    def close_if_idle(self) -> None:
        """Graceful shutdown: close unless a request is being answered."""
        if not self._busy:
            self.close()

    def request_done(self, keep_alive: bool) -> None:
        """The pending request was answered; serve the next one or close."""
        self._busy = False
        if keep_alive:
            self._serve_next()
        else:
            self.close()

    def run_task(self, coro: Coroutine[Any, Any, bool]) -> None:
        """Let a task finish the current request (it may wait for the visitor, the origin, a dial)."""
        self._task = self.state.loop.create_task(self._run(coro))

    async def _run(self, coro: Coroutine[Any, Any, bool]) -> None:
        try:
            keep_alive = await coro
        except BaseException:
            self._task = None
            self.close()
            raise
        self._task = None
        self.request_done(keep_alive)

    def _idle_expired(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            waiter.cancel()  # next_event: timed out
        elif not self._busy:
            self.close()

    def next_event_nowait(self) -> Event | None:
        """The next queued event; None when nothing is queued (or the visitor went away: see ``closed``).

        Raises:
            DownstreamError: the visitor sent something malformed (after all earlier events).
        """
        queue = self._queue
        if not queue:
            return None
        item = queue[0]
        if isinstance(item, _Closed):
            return None
        queue.popleft()
        if isinstance(item, EdgeError):
            raise item
        if isinstance(item, BodyReceived):
            self._buffered -= len(item.data)
        if not queue:
            self._buffered = 0
            if self._read_paused and not self.closed and self.transport is not None:
                self._read_paused = False
                self.transport.resume_reading()
        return item

    @property
    def at_eof(self) -> bool:
        return bool(self._queue) and isinstance(self._queue[0], _Closed)

    async def next_event(self, timeout: float) -> Event | None:
        """Wait up to ``timeout`` for the next event; None on EOF or timeout."""
        while True:
            event = self.next_event_nowait()
            if event is not None:
                return event
            if self.at_eof or self.closed:
                return None
            waiter = self._waiter = self.state.loop.create_future()
            self._idle.arm(timeout)
            try:
                await waiter
            except asyncio.CancelledError:
                if not waiter.cancelled():
                    raise
                if self._task is not None and self._task.cancelling():
                    raise
                return None  # timed out
            finally:
                self._idle.disarm()
                self._waiter = None

    def write(self, data: bytes) -> None:
        """Queue ``data``; it is sent by :meth:`flush` (each transport write is one TLS record and one
        syscall, so a response head and a body that is already here go out together)."""
        self._out.append(data)

    def flush(self) -> None:
        if self._out:
            data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            self._out.clear()
            if self.transport is not None and not self.closed:
                self.transport.write(data)

    async def drain(self, timeout: float) -> bool:
        """Flush, then wait for the visitor to accept written bytes; False if it did not in ``timeout``."""
        self.flush()
        if not self._write_paused or self.closed:
            return not self.closed
        waiter = self._drain_waiter = self.state.loop.create_future()
        handle = self.state.loop.call_later(timeout, waiter.cancel)
        try:
            await waiter
        except asyncio.CancelledError:
            if not waiter.cancelled() or (self._task is not None and self._task.cancelling()):
                raise
            return False
        finally:
            handle.cancel()
            self._drain_waiter = None
        return not self.closed

    def close(self) -> None:
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True
        self._idle.cancel()
        self.state.connections.discard(self)
