"""WebSockets (RFC 6455) through the edge: the handshake is an ordinary request, then a byte relay.

Theory of operation. llhttp stops at a request with ``Upgrade`` and ``Connection: upgrade``
(``RequestParser.upgrade_request``); the pipeline has already run for it like for any request (routing,
SSL mode, WAF: a block is answered and the connection closed, nothing reaches an origin). When the zone's
``websockets`` setting is on and the request is a WebSocket handshake (``GET``, HTTP/1.1, no body,
``Upgrade: websocket``), ``edge/http1.py`` hands it to :func:`relay` instead of the pool:

1. A *dedicated* origin connection is dialled through the same connector as the pool's, for the peer the
   pipeline chose (client certificate by the AOP precedence, same TLS contexts); it is never taken from
   nor returned to the pool.
2. The pipeline's origin request head is sent with ``Upgrade`` and ``Connection: Upgrade`` put back (they
   are hop-by-hop, stripped from every other request).
3. The origin's ``101 Switching Protocols`` is relayed to the visitor, and both transports are switched,
   inside the origin's ``data_received``, to the two sides of a :class:`_Relay` (no read can land in the
   HTTP protocols after the switch). Any other status is relayed as a normal response, then both close.
4. The relay copies bytes as they come. Backpressure: when one side's write buffer is full
   (``pause_writing``), reading from the other side pauses until it drains. An EOF from one side is passed
   on as a half-close where the transport can (plain TCP), else both close (TLS has no half-close in
   asyncio); a connection that ends closes the other after its buffered bytes are written.
5. No byte in either direction for ``websocket_idle_timeout`` (Cloudflare: 100 s) closes both.

One access-log line per WebSocket when it ends (status 101, duration, bytes sent to the visitor), and
:class:`~originlock.edge.state.WebSocketStats` counts upgrades and open relays for ``/metrics``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Final

from originlock.edge.exchange import Exchange, VisitorGone
from originlock.edge.responses import send_error
from originlock.edge.state import EdgeState
from originlock.edge.stream import VisitorStream
from originlock.errors import EdgeError
from originlock.origin.connection import OriginConnection
from originlock.origin.deadline import Deadline
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import Forward
from originlock.proto.events import Headers, RequestReceived, ResponseReceived, lower_name
from originlock.proto.http1 import RequestParser
from originlock.proto.serialize import HOP_BY_HOP, response_head

__all__ = ["is_handshake", "relay", "wants_relay"]

#: Origin fields not passed on with the 101: hop-by-hop ones other than Upgrade (re-stated by the edge,
#: with ``Connection: Upgrade``), and the origin's own CF-Ray.
_DROP_FROM_101: Final = (HOP_BY_HOP - {b"upgrade"}) | {b"cf-ray", b"content-length"}


def is_handshake(request: RequestReceived) -> bool:
    """``request`` (one llhttp stopped at) asks for a WebSocket: GET, HTTP/1.1, no body, Upgrade: websocket."""
    if request.method != b"GET" or request.version != b"1.1" or request.body != "none":
        return False
    upgrade = request.header(b"upgrade")
    return upgrade is not None and any(t.strip().lower() == b"websocket" for t in upgrade.split(b","))


def wants_relay(request: RequestReceived, ctx: RequestContext) -> bool:
    """Relay ``request`` (one llhttp stopped at, forwarded by the pipeline) as a WebSocket: the zone's
    ``websockets`` setting is on and it is a handshake. Otherwise it goes on as an ordinary request without
    its Upgrade fields (Cloudflare's behaviour with the setting off), and the connection closes after it."""
    route = ctx.route
    return route is not None and route.websockets and is_handshake(request)


def upgrade_head(forward: Forward, request: RequestReceived) -> bytes:
    """The pipeline's origin head with the visitor's ``Upgrade`` and ``Connection: Upgrade`` put back."""
    head = forward.head
    assert head.endswith(b"\r\n\r\n")
    return head[:-2] + b"Upgrade: " + (request.header(b"upgrade") or b"websocket") + b"\r\nConnection: Upgrade\r\n\r\n"


def switching_head(response: ResponseReceived, ray_id: str) -> bytes:
    """The 101 sent to the visitor: the origin's fields (Sec-WebSocket-Accept, -Protocol, -Extensions...)
    without the hop-by-hop ones, ``Connection: Upgrade`` and the request's CF-Ray."""
    headers: Headers = [(n, v) for n, v in response.headers if lower_name(n) not in _DROP_FROM_101]
    headers.append((b"Connection", b"Upgrade"))
    headers.append((b"CF-Ray", ray_id.encode()))
    return response_head(101, headers, response.reason or None)


def relay(
    stream: VisitorStream,
    transport: asyncio.Transport,
    parser: RequestParser,
    request: RequestReceived,
    ctx: RequestContext,
    forward: Forward,
    state: EdgeState,
) -> Coroutine[Any, Any, bool]:
    """ORIGIN_CONNECT .. LOG for a WebSocket handshake the pipeline decided to forward, as a coroutine for
    ``stream.run``; it returns False (the visitor connection is closed afterwards, whatever happened).
    ``transport`` and ``parser`` are the HTTP/1.1 connection's (the bytes llhttp read past the handshake).

    Reading from the visitor pauses at once, before the task runs: bytes sent before the 101 stay in the
    socket until the relay reads them, rather than reaching the HTTP parser (which refuses them)."""
    transport.pause_reading()
    return _relay(_Visitor(stream, transport, parser), request, ctx, forward, state)


class _Visitor:
    """The visitor's side of a handshake: its stream (for a non-101 answer) and its transport."""

    __slots__ = ("parser", "stream", "transport")

    def __init__(self, stream: VisitorStream, transport: asyncio.Transport, parser: RequestParser) -> None:
        self.stream = stream
        self.transport = transport
        self.parser = parser


async def _relay(
    conn: _Visitor, request: RequestReceived, ctx: RequestContext, forward: Forward, state: EdgeState
) -> bool:
    origin: OriginConnection | None = None
    switch: _Switch | None = None
    try:
        origin = await state.connector.connect(forward.peer)
        switch = _Switch(conn, request, ctx, origin, state)
        origin.parser.allow_upgrade = True
        origin.start_exchange(request.method)
        origin.listener = switch.on_origin
        origin.arm_read_timeout(state.origin_read_timeout)
        origin.write(upgrade_head(forward, request))
        await switch.decided
        if switch.relay is not None:
            await switch.relay.finished
        else:
            # Any other answer goes to the visitor as an ordinary response, then both connections close.
            exchange = Exchange(conn.stream, request, ctx, forward, state)
            exchange.keep_alive = False
            await exchange.respond(origin, await origin.next_event(state.origin_read_timeout))
    except VisitorGone:
        pass
    except EdgeError as exc:
        send_error(conn.stream, request, ctx, exc, False)
    finally:
        if switch is not None and switch.relay is not None:
            switch.relay.close()  # cancelled (shutdown): the relay's counts and transports end too
        if origin is not None:
            origin.close()
    state.book.log(ctx, request)
    return False


class _Switch:
    """Waits for the origin's answer to the handshake; on a 101, switches both transports to a relay
    from within the origin's ``data_received`` (the listener), so no byte of the new protocol is parsed."""

    def __init__(
        self,
        conn: _Visitor,
        request: RequestReceived,
        ctx: RequestContext,
        origin: OriginConnection,
        state: EdgeState,
    ) -> None:
        self.conn = conn
        self.request = request
        self.ctx = ctx
        self.origin = origin
        self.state = state
        self.decided: asyncio.Future[None] = state.loop.create_future()
        self.relay: _Relay | None = None

    def on_origin(self) -> None:
        origin = self.origin
        origin.listener = None  # from now on the exchange's own waits see events and errors
        origin.disarm_read_timeout()
        events = origin.pending
        response = events[0] if events else None
        # A visitor gone meanwhile gets the 101 as an ordinary response (written nowhere), then both close.
        ok = origin.error is None and not self.conn.stream.closed
        if ok and isinstance(response, ResponseReceived) and response.status == 101:
            origin.consume_pending()
            self.relay = self._start_relay(response)
        if not self.decided.done():
            self.decided.set_result(None)

    def _start_relay(self, response: ResponseReceived) -> _Relay:
        conn, ctx, origin, state = self.conn, self.ctx, self.origin, self.state
        visitor_transport, origin_transport = conn.transport, origin.transport
        assert origin_transport is not None
        head = switching_head(response, ctx.ray_id)
        ctx.status = 101
        relay = _Relay(state, visitor_transport, origin_transport, ctx)
        visitor_transport.set_protocol(relay.visitor)
        origin_transport.set_protocol(relay.origin)
        conn.stream.flush()
        visitor_transport.write(head)
        if origin.parser.upgrade_tail:  # the origin's first frames came with its 101
            relay.visitor.send(origin.parser.upgrade_tail)
        if conn.parser.upgrade_tail:  # and the visitor's with its handshake
            relay.origin.send(conn.parser.upgrade_tail)
        visitor_transport.resume_reading()
        return relay


class _Side(asyncio.Protocol):
    """One end of a relay: what this transport reads goes to the other side's transport."""

    def __init__(self, relay: _Relay, transport: asyncio.Transport) -> None:
        self.relay = relay
        self.transport = transport
        self.other: _Side = self
        #: Bytes written to this side's transport.
        self.sent = 0
        self.eof = False
        self.lost = False
        self._reading_paused = False

    def send(self, data: bytes) -> None:
        if not self.lost:
            self.sent += len(data)
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.relay.active()
        self.other.send(data)

    def eof_received(self) -> bool:
        self.eof = True
        other = self.other
        if other.eof or other.lost or not (self.transport.can_write_eof() and other.transport.can_write_eof()):
            self.relay.close()  # both ways ended, or TLS (no half-close in asyncio): end both, buffers written
            return False
        other.transport.write_eof()  # plain TCP both sides: the half-close is passed on, the other way goes on
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.relay.close()

    def pause_writing(self) -> None:
        self.other.pause_reading()

    def resume_writing(self) -> None:
        self.other.resume_reading()

    def pause_reading(self) -> None:
        if not self._reading_paused and not self.lost:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and not self.lost:
            self._reading_paused = False
            self.transport.resume_reading()


class _Relay:
    """Both sides of one WebSocket, its idle deadline and its end (``finished``)."""

    def __init__(
        self,
        state: EdgeState,
        visitor_transport: asyncio.Transport,
        origin_transport: asyncio.Transport,
        ctx: RequestContext,
    ) -> None:
        self.state = state
        self.ctx = ctx
        self.visitor = _Side(self, visitor_transport)
        self.origin = _Side(self, origin_transport)
        self.visitor.other, self.origin.other = self.origin, self.visitor
        self.finished: asyncio.Future[None] = state.loop.create_future()
        self._idle_timeout = state.config.websocket_idle_timeout
        self._idle = Deadline(state.loop, self.close)
        self._idle.arm(self._idle_timeout)
        self._closed = False
        stats = state.websockets
        stats.upgrades += 1
        stats.active += 1

    def active(self) -> None:
        self._idle.arm(self._idle_timeout)  # a time stored; at most one timer operation per period

    def close(self) -> None:
        """End the WebSocket: both transports close after writing what they hold."""
        if self._closed:
            return
        self._closed = True
        self._idle.cancel()
        self.state.websockets.active -= 1
        for side in (self.visitor, self.origin):
            side.resume_reading()  # a paused side would otherwise keep unread bytes it no longer needs
            side.transport.close()
        self.ctx.bytes_sent = self.visitor.sent
        if not self.finished.done():
            self.finished.set_result(None)
