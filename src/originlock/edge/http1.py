"""An HTTP/1.1 visitor connection: an asyncio ``Protocol`` that feeds the sans-IO request parser and serves
its requests one after another, each as the connection's one :class:`~originlock.edge.stream.VisitorStream`.

Parsing happens in ``data_received`` (pipelined requests queue up as events, in order). One request is
served at a time, so responses are always written in request order and never interleave; the exchange
(``edge/exchange.py``) calls :meth:`Http1Connection.finished` when it is done, and the next queued request is
taken. The idle and header timeouts are one :class:`~originlock.origin.deadline.WheelDeadline` on the
process's timer wheel (no loop timer of its own per connection). Reading pauses when more than
:data:`READ_HIGH_WATER` bytes of parsed events are waiting (a visitor that uploads faster than the origin
accepts is slowed down rather than buffered). A protocol error is queued after the events that preceded
it, so earlier requests are still answered before the 400.

Framing of responses (the stream's half of the one response writer): a body of known length keeps its
``Content-Length``; a chunked or read-until-close body is re-chunked for an HTTP/1.1 visitor, and for an
HTTP/1.0 visitor ends with the connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final, cast

from originlock.edge.exchange import Relay, begin, new_context
from originlock.edge.responses import send_error
from originlock.edge.state import EdgeState
from originlock.edge.stream import Visitor, VisitorStream
from originlock.edge.websocket import relay, wants_relay
from originlock.errors import DownstreamError, EdgeError
from originlock.pipeline.builtin.forwarding import visitor_response_head
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import Forward
from originlock.proto.events import BodyReceived, Event, MessageEnded, RequestReceived, ResponseReceived
from originlock.proto.http1 import RequestParser
from originlock.proto.serialize import LAST_CHUNK, chunk

__all__ = ["Http1Connection"]

#: Parsed-but-unconsumed request bytes above which the edge stops reading from the visitor.
READ_HIGH_WATER: Final = 256 * 1024
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
#: Stands for a request whose head could not be parsed, when its 400/414/431 is written.
_UNPARSED: Final = RequestReceived(b"GET", b"/", b"1.1", [], False, "none", False)


class _Closed:
    """Sentinel queued when the visitor half-closed or the connection ended."""


_CLOSED: Final = _Closed()


def _nothing() -> None:
    return None


class Http1Connection(asyncio.Protocol, VisitorStream):
    #: The visitor going away cancels no exchange task: one still answering finds the connection closed
    #: when it writes, and closes it (``VisitorStream.cancels_task``).
    cancels_task = False

    def __init__(self, state: EdgeState, scheme: str) -> None:
        self.state = state
        self.visitor = Visitor(scheme)
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser(state.limits)
        self._closed = False
        self._queue: deque[Event | EdgeError | _Closed] = deque()
        self._buffered = 0
        self._read_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._out: list[bytes] = []
        #: A request is being answered.
        self._busy = False
        #: The request being answered: the end of it was received (and taken from the queue).
        self._request_ended = False
        #: The response being written re-chunks its body.
        self._rechunk = False
        self._idle = state.timers.deadline(self._idle_expired)
        #: Bytes of the next request head have arrived (the header timeout runs, not the idle one).
        self._head_started = False
        #: ``flush`` bound once for the grouped sends (one bound method per request otherwise); it holds
        #: this connection, so connection_lost drops it as it drops the parser.
        self._flush_soon: Callable[[], None] = self.flush

    @property
    def closed(self) -> bool:
        return self._closed

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement its interface.
        self.transport = cast(asyncio.Transport, transport)
        self.visitor.learn(transport)
        self.state.visitors.open.add(self)
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
            if (
                len(events) == 2
                and not self._busy
                and not self._queue
                and not self._write_paused
                and not self.state.visitors.draining
            ):
                request = events[0]
                if isinstance(request, RequestReceived) and request.body == "none":
                    # The usual read: one whole request without a body (its head and its end), nothing
                    # queued before it and none being answered: served without going through the queue.
                    self._request_ended = True
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
        self._closed = True
        self._queue.append(_CLOSED)
        self._wake()
        self._idle.cancel()
        self.state.visitors.open.discard(self)
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        # The llhttp parser holds the request parser's bound callbacks: without this every closed connection
        # would wait for the cyclic garbage collector (issue 11). Events already queued stay readable.
        self.parser.release()
        self._flush_soon = _nothing

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        elif not self._busy and not self._closed and self._queue:
            self._serve_next()  # requests that waited for the visitor to take its earlier answers

    def _pause(self) -> None:
        if not self._read_paused and self.transport is not None and not self._closed:
            self._read_paused = True
            self.transport.pause_reading()

    def _wake(self) -> None:
        """Something was queued: the waiting exchange is told; an idle connection serves it now."""
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
            if self._closed:
                # Requests still queued behind one that closed the connection (a 400, Connection: close, an
                # Upgrade) are never served: serving them would forward them to an origin.
                return
            if state.visitors.draining:
                self.close()
                return
            if self._write_paused:
                # The visitor is not taking its answers: pipelined requests wait rather than pile their
                # responses up in the edge's memory; a visitor that reads nothing for the idle time is closed.
                if not self._idle.armed:
                    self._idle.arm(state.idle_timeout)
                return
            try:
                event = self._next_event_nowait()
            except DownstreamError as exc:
                self._reject(exc)
                self.close()
                return
            if event is None:
                if self._at_eof:
                    self.close()
                elif not self._idle.armed:  # partial data does not extend the idle (or header) time
                    self._idle.arm(state.idle_timeout)
                return
            if not isinstance(event, RequestReceived):
                self.close()
                return
            self._request_ended = False
            if event.body == "none" and self._queue and isinstance(self._queue[0], MessageEnded):
                self._queue.popleft()
                self._request_ended = True
            if not self._serve(event):
                return

    def _serve(self, request: RequestReceived) -> bool:
        """Start answering ``request``; True when it was answered at once and the connection stays open."""
        self._idle.disarm()
        self._head_started = False
        self._busy = True
        self._rechunk = False
        upgrade = self.parser.upgrade_request is request
        try:
            keep_alive = begin(self, request, self.state, self._relay_for(request) if upgrade else None)
        except BaseException:
            self.close()
            raise
        if keep_alive is None:
            return False  # answered later: finished() continues
        self._busy = False
        if not keep_alive:
            self.close()
            return False
        return True

    def _relay_for(self, request: RequestReceived) -> Relay:
        """A request llhttp stopped at (Upgrade): a WebSocket handshake goes to edge/websocket.py."""

        def relay_websocket(ctx: RequestContext, forward: Forward) -> Coroutine[Any, Any, bool] | None:
            if not wants_relay(request, ctx) or self.transport is None:
                return None
            return relay(self, self.transport, self.parser, request, ctx, forward, self.state)

        return relay_websocket

    def _reject(self, exc: DownstreamError) -> None:
        """Answer a request whose head could not be parsed (400/414/431); the connection closes after it."""
        ctx = new_context(self.visitor, self.state)
        self._request_ended = True
        send_error(self, _UNPARSED, ctx, exc, False)
        self.state.book.log(ctx, None)

    def close_if_idle(self) -> None:
        """Graceful shutdown: close unless a request is being answered."""
        if not self._busy:
            self.close()

    def finished(self, keep_alive: bool) -> None:
        """The exchange answered the current request; serve the next one or close."""
        self._busy = False
        if keep_alive and not self._closed:
            self._serve_next()
        else:
            self.close()

    def run(self, work: Coroutine[Any, Any, bool | None]) -> None:
        self._task = self.state.loop.create_task(self._run(work))

    async def _run(self, work: Coroutine[Any, Any, bool | None]) -> None:
        try:
            keep_alive = await work
        except BaseException:
            self._task = None
            self.close()
            raise
        self._task = None
        if keep_alive is not None:  # None: the origin connection's callbacks finish the exchange
            self.finished(keep_alive)

    def _idle_expired(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            waiter.cancel()  # body_event: timed out
        elif not self._busy:
            self.close()

    # -- the request body (VisitorStream) ----------------------------------------------------------

    def _next_event_nowait(self) -> Event | None:
        """The next queued event; None when nothing is queued (or the visitor went away).

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
            if self._read_paused and not self._closed and self.transport is not None:
                self._read_paused = False
                self.transport.resume_reading()
        return item

    @property
    def _at_eof(self) -> bool:
        return self._closed or (bool(self._queue) and isinstance(self._queue[0], _Closed))

    def body_event_nowait(self) -> BodyReceived | MessageEnded | None:
        queue = self._queue
        if self._request_ended or not queue or isinstance(queue[0], RequestReceived):
            return None
        event = self._next_event_nowait()
        if isinstance(event, MessageEnded):
            self._request_ended = True
            return event
        return event if isinstance(event, BodyReceived) else None

    async def body_event(self, timeout: float) -> BodyReceived | MessageEnded | None:
        while True:
            event = self.body_event_nowait()
            if event is not None or self._request_ended:
                return event
            if self._at_eof:
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

    def discard_body(self) -> bool:
        while not self._request_ended:
            try:
                if self.body_event_nowait() is None:
                    return False
            except EdgeError:
                return False
        return True

    def send_continue(self) -> None:
        self._out.append(_CONTINUE)
        self.flush()

    # -- the response (VisitorStream) ---------------------------------------------------------------

    def send_head(self, response: ResponseReceived, request: RequestReceived, ray_id: str, keep_alive: bool) -> bool:
        framing = response.body
        http11 = request.version == b"1.1"
        unsized = framing == "chunked" or framing == "close"
        if unsized and not http11:
            keep_alive = False  # HTTP/1.0 visitor: the body ends when the connection closes
        rechunk = self._rechunk = unsized and http11
        self._out.append(
            visitor_response_head(
                response, ray_id=ray_id, chunked=rechunk, close=not keep_alive, keep_alive_1_0=keep_alive and not http11
            )
        )
        return keep_alive

    def send_data(self, data: bytes) -> None:
        self._out.append(chunk(data) if self._rechunk else data)

    def send_end(self) -> None:
        if self._rechunk:
            self._out.append(LAST_CHUNK)
        # A later write on this connection (the next pipelined answer) flushes it earlier, in order.
        self.state.batch.add(self._flush_soon)

    def flush(self) -> None:
        out = self._out
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            if self.transport is not None and not self._closed:
                self.transport.write(data)

    async def drain(self, timeout: float) -> bool:
        self.flush()
        if not self._write_paused or self._closed:
            return not self._closed
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
        return not self._closed

    def close(self) -> None:
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._closed = True
        self._idle.cancel()
        self.state.visitors.open.discard(self)
