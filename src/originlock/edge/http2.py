"""An HTTP/2 visitor connection (ALPN ``h2``): an asyncio ``Protocol`` around the sans-IO server in
``proto/http2.py``, each request stream a :class:`~originlock.edge.stream.VisitorStream` for the one exchange.

Every stream runs the same phases, the same origin exchange (pooled HTTP/1.1 mTLS connections, the same
client-certificate precedence) and the same response writer as an HTTP/1.1 request; only the framing
differs. Frames are written once per read and once per event-loop iteration's batch of responses.

Flow control is end to end: the request body's bytes are acknowledged to the visitor only when the
exchange took them (a slow origin slows the uploader), and a response's bytes beyond the visitor's window
wait in the protocol layer; the exchange's ``drain`` waits while more than :data:`STREAM_HIGH_WATER`
bytes of its stream are held back, so a visitor that does not read holds the origin back instead of
filling the edge's memory. Limits and the defences against floods (rapid reset, CONTINUATION, HPACK
bombs, SETTINGS/PING floods) are the protocol layer's; this module turns its verdicts into closing.

Graceful shutdown sends GOAWAY: streams already open finish, new ones are refused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any, Final, cast

from originlock.edge.exchange import begin, new_context
from originlock.edge.responses import send_error
from originlock.edge.state import EdgeState
from originlock.edge.stream import Visitor, VisitorStream
from originlock.errors import DownstreamError
from originlock.origin.deadline import Deadline
from originlock.pipeline.builtin.forwarding import DROP_TO_VISITOR, visitor_response_headers
from originlock.proto.events import BodyReceived, MessageEnded, RequestReceived, ResponseReceived
from originlock.proto.http2 import (
    CANCEL,
    NO_ERROR,
    ConnectionEnded,
    H2Limits,
    H2Server,
    NgH2Server,
    RequestRefused,
    RequestStarted,
    StreamData,
    StreamEnded,
    StreamReset,
    WindowOpened,
    new_h2_server,
)
from originlock.proto.http2_request import CONNECTION_SPECIFIC

__all__ = ["Http2Connection", "Http2Stream"]

#: Response bytes of one stream held back by flow control above which its exchange stops reading the origin.
STREAM_HIGH_WATER: Final = 256 * 1024
#: The origin's fields an HTTP/2 visitor never gets: what ``visitor_response_headers`` (hop-by-hop, the
#: origin's CF-Ray) and ``response_fields`` (connection-specific) drop between them, lower-case.
_DROPPED: Final = tuple(sorted(DROP_TO_VISITOR | CONNECTION_SPECIFIC))
#: Stands for a request the protocol layer refused (414, 431, a bad target...), when its error is written.
_REFUSED: Final = RequestReceived(b"GET", b"/", b"2", [], True, "none", False)


def _nothing() -> None:
    return None


class Http2Connection(asyncio.Protocol):
    def __init__(self, state: EdgeState, scheme: str, limits: H2Limits | None = None) -> None:
        self.state = state
        self.visitor = Visitor(scheme)
        self.transport: asyncio.Transport | None = None
        # libnghttp2 when it loads, else the pure-Python codec (proto/http2.py: h2_codec() says which).
        self.h2: H2Server | NgH2Server = new_h2_server(limits or H2Limits(), scheme=scheme.encode())
        self.streams: dict[int, Http2Stream] = {}
        self.closed = False
        self._write_paused = False
        self._goaway_sent = False
        #: A flush is queued for this event-loop iteration's batch of writes (one per connection, however many
        #: of its streams finish in the iteration: each further one would cost a pass through the codec).
        self._flush_queued = False
        self._flush_later = self._queued_flush
        self._idle = Deadline(state.loop, self._idle_expired)

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.visitor.learn(transport)
        self.state.visitors.open.add(self)
        self.h2.initiate()
        self.flush()
        self._idle.arm(self.state.idle_timeout)

    def data_received(self, data: bytes) -> None:
        state = self.state
        for event in self.h2.feed(data):
            if isinstance(event, RequestStarted):
                self._idle.disarm()
                stream = Http2Stream(self, event.stream_id, event.request)
                self.streams[event.stream_id] = stream
                if state.visitors.draining:
                    stream.reset(NO_ERROR)  # shutting down: GOAWAY already told the visitor
                    continue
                stream.start()
            elif isinstance(event, RequestRefused):
                self._idle.disarm()
                stream = self.streams[event.stream_id] = Http2Stream(self, event.stream_id, _REFUSED)
                stream.refuse(event.error)
            else:
                stream_id = getattr(event, "stream_id", None)
                target = self.streams.get(stream_id) if isinstance(stream_id, int) else None
                if isinstance(event, StreamData):
                    if target is not None:
                        target.received(BodyReceived(event.data))
                    else:
                        self.h2.acknowledge(event.stream_id, len(event.data))
                elif isinstance(event, StreamEnded):
                    # (A request whose head ended the stream has no body to end: the usual GET.)
                    if target is not None and target.request.body != "none":
                        target.received(MessageEnded())
                elif isinstance(event, StreamReset):
                    if target is not None:
                        target.reset_by_visitor()
                elif isinstance(event, WindowOpened):
                    for one in [target] if target is not None else list(self.streams.values()):
                        one.window_opened()
                elif isinstance(event, ConnectionEnded):
                    self.close()
                    return
        self.flush()
        if self.h2.closed:
            self.close()

    def eof_received(self) -> bool:
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._idle.cancel()
        self.state.visitors.open.discard(self)
        for stream in list(self.streams.values()):
            stream.reset_by_visitor()
        # A bound method of this connection kept on it is a reference cycle: without this every closed
        # connection would wait for the cyclic garbage collector (issue 11).
        self._flush_later = _nothing

    def pause_writing(self) -> None:
        # The visitor is not reading: take no new frames (no new streams) until it does. Its own windows do
        # not bound what the edge queues for it (a visitor picks windows of up to 2 GiB).
        self._write_paused = True
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()
        for stream in list(self.streams.values()):
            stream.window_opened()

    # -- used by the streams -------------------------------------------------------------------

    def schedule_flush(self) -> None:
        """Write what the codec queued, once, with this event-loop iteration's other writes."""
        if not self._flush_queued:
            self._flush_queued = True
            self.state.send_soon(self._flush_later)

    def _queued_flush(self) -> None:
        self._flush_queued = False
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def stream_done(self, stream: Http2Stream) -> None:
        self.streams.pop(stream.stream_id, None)
        self.schedule_flush()
        if not self.streams:
            if self.state.visitors.draining:
                self.close_if_idle()
            else:
                self._idle.arm(self.state.idle_timeout)

    def _idle_expired(self) -> None:
        if not self.streams:
            self.close_if_idle()

    def close_if_idle(self) -> None:
        """Graceful shutdown: GOAWAY (open streams finish), then close once none is left."""
        if not self._goaway_sent and not self.closed:
            self._goaway_sent = True
            self.h2.goaway()
            self.flush()
        if not self.streams:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        self._idle.cancel()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.state.visitors.open.discard(self)
        for stream in list(self.streams.values()):
            stream.reset_by_visitor()


class Http2Stream(VisitorStream):
    """One request stream (a :class:`~originlock.edge.stream.VisitorStream`)."""

    #: A reset cancels the exchange's task (:meth:`reset_by_visitor`), so the task's work never ends early.
    cancels_task = True

    def __init__(self, conn: Http2Connection, stream_id: int, request: RequestReceived) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.request = request
        self.visitor = conn.visitor
        self._h2: H2Server | NgH2Server = conn.h2
        #: The request body's events not yet taken (made with the first one: most requests have none).
        self._body: deque[BodyReceived | MessageEnded] | None = None
        self._ended = request.body == "none"
        self._reset = False
        #: END_STREAM was sent: the response is complete.
        self._answered = False
        #: The latest response-body piece, not yet given to the protocol layer (see send_data).
        self._held = b""
        self._done = False
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self._reset or self.conn.closed

    def start(self) -> None:
        keep_alive = begin(self, self.request, self.conn.state)
        if keep_alive is not None:
            self.finished(keep_alive)

    def refuse(self, error: DownstreamError) -> None:
        """Answer a request the protocol layer refused with its 4xx page, as HTTP/1.1 would."""
        state = self.conn.state
        ctx = new_context(self.visitor, state)
        send_error(self, self.request, ctx, error, True)
        state.book.log(ctx, None)
        self.finished(True)

    # -- events from the connection --------------------------------------------------------------

    def received(self, event: BodyReceived | MessageEnded) -> None:
        body = self._body
        if body is None:
            body = self._body = deque()
        body.append(event)
        self._wake()

    def reset_by_visitor(self) -> None:
        self._reset = True
        self._wake()
        if self._task is not None and not self._task.done():
            self._task.cancel()  # nobody to answer: the exchange stops, its origin connection is closed
        elif not self._done:
            self._done = True
            self.conn.streams.pop(self.stream_id, None)

    def window_opened(self) -> None:
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float) -> bool:
        """Wait for news on this stream; False after ``timeout``."""
        loop = self.conn.state.loop
        waiter = self._waiter = loop.create_future()
        handle = loop.call_later(timeout, waiter.cancel)
        try:
            await waiter
        except asyncio.CancelledError:
            if not waiter.cancelled() or (self._task is not None and self._task.cancelling()):
                raise
            return False
        finally:
            handle.cancel()
            self._waiter = None
        return True

    # -- the response --------------------------------------------------------------------------

    def send_head(self, response: ResponseReceived, request: RequestReceived, ray_id: str, keep_alive: bool) -> bool:
        if not self.closed:
            h2 = self._h2
            # The usual head goes to the codec as parsed (the shim lower-cases, checks and drops in C); what
            # it leaves (a Connection field, a field it refuses) takes the general path, to the same fields.
            extra = (b"cf-ray", ray_id.encode())
            if not h2.send_raw_response(self.stream_id, response.status, response.headers, _DROPPED, extra):
                fields = visitor_response_headers(response, ray_id=ray_id, chunked=False, close=False)
                h2.send_response(self.stream_id, response.status, fields, end_stream=False)
        return True

    def send_data(self, data: bytes) -> None:
        # The latest piece is held back until the next one or the end: the last piece then carries
        # END_STREAM itself, rather than an empty DATA frame after it (one frame and one pass through h2 less
        # per response).
        if not self.closed and data:
            if self._held:
                self._h2.send_data(self.stream_id, self._held)
            self._held = data

    def send_end(self) -> None:
        if not self.closed:
            self._h2.send_data(self.stream_id, self._held, end_stream=True)
            self._held = b""
            self._answered = True
        self.conn.schedule_flush()

    def _release(self) -> None:
        if self._held and not self.closed:
            self._h2.send_data(self.stream_id, self._held)
        self._held = b""

    def flush(self) -> None:
        self._release()
        self.conn.flush()

    async def drain(self, timeout: float) -> bool:
        self._release()
        self.conn.flush()
        while not self.closed and (self._h2.buffered(self.stream_id) > STREAM_HIGH_WATER or self.conn._write_paused):
            if not await self._wait(timeout):
                return False
        return not self.closed

    # -- the request body ------------------------------------------------------------------------

    def send_continue(self) -> None:
        pass  # an HTTP/2 visitor sends its body without waiting for 100 Continue's go-ahead from the edge

    def body_event_nowait(self) -> BodyReceived | MessageEnded | None:
        body = self._body
        if not body:
            return None
        event = body.popleft()
        if isinstance(event, BodyReceived):
            self._h2.acknowledge(self.stream_id, len(event.data))
            self.conn.schedule_flush()
        else:
            self._ended = True
        return event

    async def body_event(self, timeout: float) -> BodyReceived | MessageEnded | None:
        while True:
            event = self.body_event_nowait()
            if event is not None:
                return event
            if self.closed or self._ended or not await self._wait(timeout):
                return None

    def discard_body(self) -> bool:
        while self.body_event_nowait() is not None:
            pass
        return True  # the stream ends with the response; the connection carries on either way

    # -- lifetime ----------------------------------------------------------------------------------

    def run(self, work: Coroutine[Any, Any, bool | None]) -> None:
        self._task = self.conn.state.loop.create_task(self._run(work))

    async def _run(self, work: Coroutine[Any, Any, bool | None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            if not self._reset:
                raise
        finally:
            self._task = None
            self.finished(True)

    def finished(self, keep_alive: bool) -> None:
        """The exchange is over (``keep_alive`` concerns HTTP/1.1 connections only): a stream whose response
        was cut short is reset; one answered before its request body ended is closed with NO_ERROR
        (RFC 9113 §8.1); then it is forgotten."""
        if self._done:
            return
        self._done = True
        if not self.closed and not self._answered:
            self.reset(CANCEL)
        elif not self.closed and not self._ended:
            self.reset(NO_ERROR)
        self.conn.stream_done(self)

    def reset(self, code: int) -> None:
        if not self._reset:
            self._reset = True
            self._h2.reset(self.stream_id, code)
            self.conn.schedule_flush()
