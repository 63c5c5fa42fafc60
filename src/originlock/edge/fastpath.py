"""The request path driven by protocol callbacks, without a task per request.

A task-per-connection design costs, per proxied request, two task wake-ups (request arrived, response
arrived), two futures, two timers and a stack of coroutine frames to resume. Here the common case runs
entirely inside ``data_received`` (alone, within the benchmark's noise: docs/performance.md step 1), and
its two writes are grouped per event-loop iteration (``EdgeState.send_soon``), which took the edge from
3.7x to 2.4x nginx's CPU per request (step 3):

1. :func:`begin` (visitor bytes completed a request head): the pure phases (``run_until_origin``),
   then, for a request without a body and an *idle pooled* origin connection, the request head is
   written to it and an :class:`_Exchange` is registered as the connection's listener.
2. :meth:`_Exchange.on_origin` (origin bytes arrived): when the whole response is there, it is written
   to the visitor in one flush, the origin connection goes back to the pool and the request is logged.

Everything else is handed to the task-based path in ``edge/exchange.py`` (``proxy_request``) at the
point reached, so behaviour stays that of one implementation: request bodies, dialling a new origin
connection, a response that does not arrive complete in one read (streamed from there), and every
origin error or timeout (including the once-only retry of an idempotent request on a fresh connection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from originlock.edge.exchange import failed, new_context, proxy_request, request_consumed, respond, response_start
from originlock.edge.websocket import relay, wants_relay
from originlock.errors import EdgeError, MalformedRequest
from originlock.origin.connection import OriginConnection
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import Forward, Respond
from originlock.pipeline.phases import run_until_origin
from originlock.proto.events import BodyReceived, MessageEnded, RequestReceived, ResponseReceived
from originlock.proto.serialize import LAST_CHUNK, chunk

if TYPE_CHECKING:
    from originlock.edge.downstream import DownstreamConnection
    from originlock.edge.server import EdgeState

__all__ = ["begin"]


def begin(conn: DownstreamConnection, request: RequestReceived, state: EdgeState) -> bool | None:
    """Start answering ``request``. Returns whether the connection stays open when the request was
    answered right away, or None when the answer is pending (``conn.request_done`` is called later)."""
    ctx = new_context(conn, state)
    keep_alive = request.keep_alive
    try:
        decision = run_until_origin(request, ctx, state.settings, state.waf)
        if isinstance(decision, Respond):
            keep_alive = respond(conn, request, ctx, decision, keep_alive)
        else:
            if request.body == "none" and not request_consumed(conn, request):
                raise MalformedRequest("request ended unexpectedly")
            if conn.parser.upgrade_request is request and wants_relay(request, ctx):
                conn.run_task(relay(conn, request, ctx, decision, state))  # edge/websocket.py
                return None
            origin = state.pool.acquire_idle(decision.peer) if request.body == "none" else None
            if origin is None:
                conn.run_task(proxy_request(conn, request, ctx, decision, state))
                return None
            ctx.origin_reused = True
            _Exchange(conn, request, ctx, decision, state, origin).start()
            return None
    except EdgeError as exc:
        keep_alive = failed(conn, request, ctx, exc, keep_alive)
    state.log(ctx, request)
    return keep_alive and not conn.closed


class _Exchange:
    """One request on a reused origin connection, completed from the origin's ``data_received``."""

    __slots__ = ("conn", "ctx", "forward", "origin", "request", "state")

    def __init__(
        self,
        conn: DownstreamConnection,
        request: RequestReceived,
        ctx: RequestContext,
        forward: Forward,
        state: EdgeState,
        origin: OriginConnection,
    ) -> None:
        self.conn = conn
        self.request = request
        self.ctx = ctx
        self.forward = forward
        self.state = state
        self.origin = origin

    def start(self) -> None:
        origin, request = self.origin, self.request
        origin.start_exchange(request.method)
        origin.listener = self.on_origin
        origin.arm_read_timeout(self.state.origin_read_timeout)
        self.state.send_soon(self._send_head)

    def _send_head(self) -> None:
        # A connection that closed meanwhile already reported it through on_origin (hand-over: the
        # task path sees the error and, for an idempotent request, retries on a fresh connection).
        if not self.origin.closed:
            self.origin.write(self.forward.head)

    def on_origin(self) -> None:
        """New events, an error or the read timeout on the origin connection."""
        origin = self.origin
        events = origin.pending
        if origin.error is None and events and isinstance(events[-1], MessageEnded):
            self._complete()
        elif events or origin.error is not None or origin.closed:
            self._hand_over()

    def _detach(self) -> None:
        self.origin.listener = None
        self.origin.disarm_read_timeout()

    def _hand_over(self) -> None:
        """Continue in the task-based path (streaming, errors, retry): it sees the same queued events."""
        self._detach()
        conn = self.conn
        conn.run_task(proxy_request(conn, self.request, self.ctx, self.forward, self.state, started=self.origin))

    def _complete(self) -> None:
        """RESPONSE_HEADERS, RESPONSE_BODY and LOG for a response that is all here (one flush)."""
        self._detach()
        conn, request, ctx, origin, state = self.conn, self.request, self.ctx, self.origin, self.state
        released = False
        try:
            # on_origin saw the whole response queued: one pass over it, then one call to consume it all.
            events = origin.pending
            response = events[0]
            assert isinstance(response, ResponseReceived)
            keep_alive, rechunk = response_start(conn, request, ctx, response, request.keep_alive)
            sent = 0
            for event in events:
                if isinstance(event, BodyReceived):
                    data = event.data
                    sent += len(data)
                    conn.write(chunk(data) if rechunk else data)
            origin.consume_pending()
            if rechunk:
                conn.write(LAST_CHUNK)
            state.send_soon(conn.flush)  # a later write on this connection flushes it earlier, in order
            ctx.bytes_sent = sent
            released = True
            state.pool.release(origin, origin.finish_exchange(response.keep_alive))
            state.log(ctx, request)
        except BaseException:
            if not released:
                state.pool.release(origin, False)
                origin.close()
            conn.close()
            raise
        conn.request_done(keep_alive and not conn.closed)
