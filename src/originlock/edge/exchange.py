"""One request, from its head to its log line: the phases of the request lifecycle, in their one order.

::

    REQUEST_HEADERS   the visitor's protocol parsed a head (edge/http1.py, edge/http2.py)
    ROUTE .. ORIGIN_REQUEST   pure: run_until_origin (pipeline/phases.py) -> answer now, or forward
    ORIGIN_CONNECT    an idle pooled connection, else a dial (or a wait for room under the origin's limit)
    REQUEST_BODY      streamed to the origin as it arrives (after the WAF's look at its first bytes)
    RESPONSE_HEADERS  RESPONSE_BODY   the origin's events, passed on by the one response writer (for a zone
                      with WAF response rules: the body's start held and inspected first, edge/response_hold.py)
    LOG               always, once
    ERROR             from any phase: the 52x/1xxx page while nothing was sent, else the response is cut

:func:`begin` runs the phases up to ORIGIN_CONNECT and :class:`Exchange` the rest. The exchange never knows
which protocol carries the visitor: it talks to a :class:`~originlock.edge.stream.VisitorStream`.

Who waits. A request without a body that finds an idle pooled connection (the common case) is finished from
callbacks: the head is written to the origin, and the origin connection's listener runs the response phases
when its bytes arrive; a response that came whole in one read is answered without any task or future
(docs/performance.md, steps 1 and 3). Everything else runs the same methods in a task
(:meth:`Exchange.run`), which can wait: for a dial, the request body, a response that arrives in pieces, a
visitor that reads slowly, and the once-only retry of an idempotent request without a body on a fresh
connection when a *reused* one failed before any response byte (the origin closed it while it was idle).
A request without a body whose task dialled (on an HTTP/1.1 visitor, whose departure cancels no task) is
handed to the same callbacks once its head is written: its response is answered in the origin connection's
``data_received`` rather than by waking the task again through the loop's queue (docs/performance.md,
issue 11, wake).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from originlock.edge.response_hold import hold_and_inspect
from originlock.edge.responses import send_error, send_local, start_response
from originlock.edge.state import EdgeState
from originlock.edge.stream import Visitor, VisitorStream
from originlock.errors import EdgeError
from originlock.origin.connection import OriginConnection
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import Forward, Respond
from originlock.pipeline.phases import run_until_origin
from originlock.proto.events import BodyReceived, Event, MessageEnded, RequestReceived, ResponseReceived
from originlock.proto.serialize import LAST_CHUNK, chunk

__all__ = ["IDEMPOTENT", "Exchange", "Relay", "VisitorGone", "begin", "new_context"]

#: The clock as a module constant: compiled, a call without looking ``time``'s attribute up per request.
_monotonic: Final = time.monotonic
IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})

#: How a protocol hands a forwarded request over instead of the pool (a WebSocket handshake on HTTP/1.1):
#: given the context and the pipeline's decision, the coroutine that answers it (edge/websocket.py).
Relay = Callable[[RequestContext, Forward], Coroutine[Any, Any, bool] | None]


class VisitorGone(Exception):
    """The visitor closed the connection or stopped reading; nothing more can be sent."""


def new_context(visitor: Visitor, state: EdgeState) -> RequestContext:
    ray_ids = state.ray_ids
    return RequestContext(
        ray_id=ray_ids.next(),
        ray_id_plain=ray_ids.json_plain,
        snapshot=state.snapshot(),
        scheme=visitor.scheme,
        client_ip=visitor.client_ip,
        client_port=visitor.client_port,
        # Only the access log reads it (the request's duration): no clock read per request without one.
        started=_monotonic() if state.book.logging else 0.0,
        sni=visitor.sni,
        tls_version=visitor.tls_version,
    )


def begin(stream: VisitorStream, request: RequestReceived, state: EdgeState, relay: Relay | None = None) -> bool | None:
    """REQUEST_HEADERS are in: run the pure phases, then answer or start the exchange with the origin.

    Returns whether the connection stays open when the request was answered at once, or None when the
    answer is pending (``stream.finished`` is called later). ``relay``: see :data:`Relay`."""
    ctx = new_context(stream.visitor, state)
    keep_alive = request.keep_alive
    try:
        decision = run_until_origin(request, ctx, state.settings, state.waf)
        if isinstance(decision, Respond):
            keep_alive = send_local(stream, request, ctx, decision, keep_alive)
        else:
            if relay is not None:
                work = relay(ctx, decision)
                if work is not None:
                    stream.run(work)
                    return None
            Exchange(stream, request, ctx, decision, state).start()
            return None
    except EdgeError as exc:
        keep_alive = send_error(stream, request, ctx, exc, keep_alive)
    state.book.log(ctx, request)
    return keep_alive and not stream.closed


class Exchange:
    """ORIGIN_CONNECT .. LOG for one request the pipeline forwards to ``forward.peer``."""

    __slots__ = ("ctx", "forward", "keep_alive", "keep_alive_from_origin", "origin", "request", "state", "stream")

    def __init__(
        self,
        stream: VisitorStream,
        request: RequestReceived,
        ctx: RequestContext,
        forward: Forward,
        state: EdgeState,
    ) -> None:
        self.stream = stream
        self.request = request
        self.ctx = ctx
        self.forward = forward
        self.state = state
        self.keep_alive = request.keep_alive
        #: Whether the origin's response lets its connection be reused (read when releasing it).
        self.keep_alive_from_origin = True
        #: The origin connection carrying the request once ORIGIN_CONNECT chose it.
        self.origin: OriginConnection | None = None

    # -- ORIGIN_CONNECT --------------------------------------------------------------------------

    def start(self) -> None:
        request, state = self.request, self.state
        # Response rules hold the response's start (edge/response_hold.py): the task path, never the callbacks.
        if request.body == "none" and self.ctx.response_inspection is None:
            origin = state.pool.acquire_idle(self.forward.peer)
            if origin is not None:
                # An idle pooled connection: the head goes out with this loop iteration's other writes,
                # and the origin's listener runs the response phases.
                self.ctx.origin_reused = True
                self.origin = origin
                origin.start_exchange(request.method)
                # The exchange itself is the listener (``__call__``) and the connection writes the head
                # through a method it bound once: no bound method made per request for either.
                origin.listener = self
                origin.arm_read_timeout(state.origin_read_timeout)
                # A connection that closes meanwhile writes nothing and tells the listener, whose task
                # sees the error (and retries).
                origin.write_soon(self.forward.head, state.send_soon)
                return
            # None idle: the task dials without looking at the idle connections again.
            self.stream.run(self.run(idle_checked=True))
            return
        self.stream.run(self.run())

    def __call__(self) -> None:
        """The pooled connection's listener: see :meth:`_on_origin`."""
        self._on_origin()

    def _on_origin(self) -> None:
        """The pooled connection has news: the whole response (answered here), or anything else (a task
        takes over: a response in pieces, an error, the read timeout)."""
        origin = self.origin
        assert origin is not None
        events = origin.pending
        complete = origin.error is None and events and isinstance(events[-1], MessageEnded)
        if not complete and not events and origin.error is None and not origin.closed:
            return
        origin.listener = None
        origin.disarm_read_timeout()
        if not complete:
            self.stream.run(self.run(written=True))
            return
        released = False
        try:
            try:
                self._pass_on_queued()
            except EdgeError as exc:  # a head the stream cannot send (HTTP/2 refuses some fields): 502
                self.keep_alive = send_error(self.stream, self.request, self.ctx, exc, self.keep_alive)
                self.keep_alive_from_origin = False
            released = True
            self.state.pool.release(origin, origin.finish_exchange(self.keep_alive_from_origin))
            self.state.book.log(self.ctx, self.request)
        except BaseException:
            if not released:
                self.state.pool.release(origin, False)
                origin.close()
            self.stream.finished(False)
            raise
        self.stream.finished(self.keep_alive and not self.stream.closed)

    async def run(self, *, written: bool = False, idle_checked: bool = False) -> bool | None:
        """The exchange as a task: ORIGIN_CONNECT (with the retry), REQUEST_BODY, then the response phases.
        ``written``: the connection in ``self.origin`` already carries the request (the callbacks handed
        it over: ``ctx`` says whether it was reused and whether this is the retry); ``idle_checked``:
        :meth:`start` found no idle connection for it. Returns whether the visitor's connection stays open,
        or None when the response was left to the origin connection's callbacks (:meth:`_on_origin`
        calls ``stream.finished``).

        One coroutine down to the pool's dial: each coroutine between the task and the loop is resumed at
        every suspension (a dial has two), so the connect step is not a coroutine of its own
        (docs/performance.md, issue 11, dial3)."""
        stream, request, ctx, state = self.stream, self.request, self.ctx, self.state
        try:
            replay: list[BodyReceived | MessageEnded] = []
            if ctx.body_inspection is not None and request.body != "none":
                inspected = await self._inspect_body()
                if inspected is None:  # answered by the managed rules (and logged)
                    return self.keep_alive and not stream.closed
                replay = inspected
            retry_allowed = request.body == "none" and request.method in IDEMPOTENT
            attempt = 1 if ctx.origin_retried else 0
            while True:
                if written:
                    origin, reused = self.origin, ctx.origin_reused
                    assert origin is not None
                else:
                    origin, reused = await state.pool.acquire(
                        self.forward.peer, fresh=attempt > 0, idle_checked=idle_checked
                    )
                    ctx.origin_reused = reused
                    self.origin = origin
                try:
                    if not written:
                        origin.start_exchange(request.method)
                        origin.write(self.forward.head)
                        if request.body != "none":
                            await self._send_body(origin, replay)
                        elif ctx.response_inspection is None and not stream.cancels_task:
                            # The response is answered where it arrives, as on the pooled path: waking
                            # this task for it would wait behind the loop's other callbacks (other dials'
                            # handshakes). A response in pieces, an error or the read timeout starts a
                            # task again (``written``).
                            origin.listener = self
                            origin.arm_read_timeout(state.origin_read_timeout)
                            return None
                    first = await origin.next_event(state.origin_read_timeout)
                except EdgeError as exc:
                    state.pool.release(origin, False)
                    origin.close()
                    if exc.retryable and retry_allowed and reused and attempt == 0:
                        attempt += 1
                        written = False
                        ctx.origin_retried = True
                        continue
                    raise
                except BaseException:
                    state.pool.release(origin, False)
                    raise
                break
            try:
                if ctx.response_inspection is not None:
                    await self.respond(origin, first)
                elif not (self._take(first) or self._pass_on_queued()):
                    # The rest of the response: most come whole in one read, passed on above.
                    await self._respond_rest(origin)
            except BaseException:
                state.pool.release(origin, False)
                raise
            state.pool.release(origin, origin.finish_exchange(self.keep_alive_from_origin))
        except VisitorGone:
            self.keep_alive = False
        except EdgeError as exc:
            self.keep_alive = send_error(stream, request, ctx, exc, self.keep_alive)
        state.book.log(ctx, request)
        return self.keep_alive and not stream.closed

    async def _inspect_body(self) -> list[BodyReceived | MessageEnded] | None:
        """Managed WAF rules read the body's first bytes before any origin connection is opened: the events
        read, to replay to the origin; None when the rules answered (the answer sent and logged)."""
        ctx, request, stream = self.ctx, self.request, self.stream
        inspection = ctx.body_inspection
        assert inspection is not None
        ctx.body_inspection = None
        replay = await self._body_prefix(inspection.limit)
        decision = inspection(b"".join(e.data for e in replay if isinstance(e, BodyReceived)))
        if isinstance(decision, Respond):
            self.keep_alive = send_local(stream, request, ctx, decision, self.keep_alive)
            self.state.book.log(ctx, request)
            return None
        return replay

    # -- REQUEST_BODY ----------------------------------------------------------------------------

    async def _next_body_event(self) -> BodyReceived | MessageEnded:
        stream = self.stream
        event = stream.body_event_nowait()
        if event is None:
            event = await stream.body_event(self.state.config.limits.body_timeout)
            if event is None:
                raise VisitorGone()
        return event

    async def _body_prefix(self, limit: int) -> list[BodyReceived | MessageEnded]:
        """Read body events until ``limit`` bytes or the end: at most one event past the limit is held."""
        if self.request.expect_continue:
            self.stream.send_continue()
        events: list[BodyReceived | MessageEnded] = []
        size = 0
        while size < limit:
            event = await self._next_body_event()
            events.append(event)
            if isinstance(event, MessageEnded):
                break
            size += len(event.data)
        return events

    async def _send_body(self, origin: OriginConnection, replay: list[BodyReceived | MessageEnded]) -> None:
        """Stream the visitor's body to the origin (re-chunked when it came chunked), starting with the
        events the WAF's body inspection already read."""
        if self.request.expect_continue and not replay:
            self.stream.send_continue()
        chunked = self.request.body == "chunked"
        write_timeout = self.state.config.origin_timeouts.write
        pending = list(replay)
        while True:
            event = pending.pop(0) if pending else await self._next_body_event()
            if isinstance(event, BodyReceived):
                origin.write(chunk(event.data) if chunked else event.data)
                await origin.drain(write_timeout)
            else:
                if chunked:
                    origin.write(LAST_CHUNK)
                return

    # -- RESPONSE_HEADERS, RESPONSE_BODY --------------------------------------------------------

    def _take(self, event: Event) -> bool:
        """Pass one origin event on to the visitor; True at the end of the response."""
        if isinstance(event, BodyReceived):
            self.ctx.bytes_sent += len(event.data)
            self.stream.send_data(event.data)
            return False
        if isinstance(event, MessageEnded):
            self.stream.send_end()
            return True
        assert isinstance(event, ResponseReceived)
        self.keep_alive_from_origin = event.keep_alive
        self.keep_alive = start_response(self.stream, self.request, self.ctx, event, self.keep_alive)
        return False

    def _pass_on_queued(self) -> bool:
        """Everything the origin connection has queued, in one pass; True at the end of the response."""
        origin = self.origin
        assert origin is not None
        ended = False
        for event in origin.pending:
            ended = self._take(event)
        origin.consume_pending()
        return ended

    async def respond(self, origin: OriginConnection, first: Event) -> None:
        """The response phases in a task, from the origin's ``first`` event on: pass on what is here, let
        the visitor take it, wait for more."""
        self.origin = origin
        state, stream = self.state, self.stream
        inspection = self.ctx.response_inspection
        if inspection is not None:
            # -- the WAF's response rules (edge/response_hold.py): hold, decide, then stream on ------------
            self.ctx.response_inspection = None  # decided once per request
            block, events = await hold_and_inspect(origin, first, inspection, state.origin_read_timeout)
            if block is not None:
                self.keep_alive_from_origin = False
                origin.close()
                self.keep_alive = send_local(stream, self.request, self.ctx, block, self.keep_alive)
                return
            # In order, and stopping at the end of the response (any() stops at the first True).
            if any(self._take(event) for event in events):
                return
        elif self._take(first) or self._pass_on_queued():
            return
        await self._respond_rest(origin)

    async def _respond_rest(self, origin: OriginConnection) -> None:
        """The response phases once what had arrived was passed on: let the visitor take it, wait for more."""
        state, stream = self.state, self.stream
        while True:
            if not await stream.drain(state.config.write_timeout):
                raise VisitorGone()
            if self._take(await origin.next_event(state.origin_read_timeout)) or self._pass_on_queued():
                return
