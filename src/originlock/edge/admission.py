"""Admitting a visitor connection: a listener's protocol factory, and the protocol a connection has until its
TLS handshake is done (the admission limits themselves are ``edge/overload.py``'s theory of operation).

Compiled with the request path (``buildtools/hotpath.py``): this runs once per visitor connection, between
the handshake's crypto, and with a connection per request the interpreted version (a closure, a ``WeakSet``
add, discard and length, the ALPN look-up) was a few thousand instructions of every request
(docs/performance.md, issue 11, visitor5).

Connections in their handshake are counted (:attr:`Visitors.admitting`) rather than kept in a weak set: an
:class:`Admission` counts itself in when it is made and out when its handshake completed or, should the
handshake fail, when the event loop drops it (``__del__``; the stdlib loop keeps a failed handshake's
protocol in a reference cycle, so there it is the cyclic collector that ends it, as it ended the weak
reference before). Either way a connection counts exactly while its :class:`Admission` is alive and not yet
admitted.
"""

from __future__ import annotations

import asyncio

from originlock.edge.http1 import Http1Connection
from originlock.edge.http2 import Http2Connection
from originlock.edge.idle import IdleGate
from originlock.edge.overload import ShedConnection
from originlock.edge.state import EdgeState
from originlock.edge.visitor import tls_object
from originlock.edge.visitors import Visitors

__all__ = ["Acceptor", "Admission"]


class Acceptor:
    """A listener's protocol factory (``loop.create_server``), one per listener: a connection over the
    capacity gets a 503-and-close protocol, any other an :class:`Admission`."""

    def __init__(self, state: EdgeState, scheme: str, idle: IdleGate) -> None:
        self.state = state
        self.scheme = scheme
        self.idle = idle

    def __call__(self) -> asyncio.Protocol:
        idle = self.idle
        if idle.parked:  # the first connection after a quiet spell: housekeeping (and ticket key) first
            idle.wake()
        state = self.state
        if state.visitors.full():
            state.overload.count("shed")
            return ShedConnection()
        return Admission(self, state.visitors)

    def protocol_for(self, transport: asyncio.BaseTransport) -> Http1Connection | Http2Connection:
        """HTTP/2 when the visitor and the TLS handshake agreed on it (ALPN ``h2``), else HTTP/1.1; its
        visitor is told the TLS version here, from the TLS object read for ALPN (one look-up, not two)."""
        ssl_obj = transport.get_extra_info("ssl_object")
        if ssl_obj is None:
            return Http1Connection(self.state, self.scheme)
        tls = tls_object(ssl_obj)
        protocol: Http1Connection | Http2Connection
        if tls.selected_alpn_protocol() == "h2":
            protocol = Http2Connection(self.state, self.scheme)
        else:
            protocol = Http1Connection(self.state, self.scheme)
        protocol.visitor.learn_tls(tls)
        return protocol


class Admission(asyncio.Protocol):
    """The protocol of a visitor connection until its handshake completed (at once for plain HTTP); then it
    hands the transport to the real protocol (``transport.set_protocol``), chosen after the handshake so that
    it can follow ALPN."""

    def __init__(self, acceptor: Acceptor, visitors: Visitors) -> None:
        self._acceptor = acceptor
        self._visitors = visitors
        self._waiting = True
        visitors.admitting += 1

    def _admitted(self) -> None:
        if self._waiting:
            self._waiting = False
            self._visitors.admitting -= 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._admitted()
        protocol = self._acceptor.protocol_for(transport)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)

    def __del__(self) -> None:
        # A failed handshake: the event loop dropped the protocol without calling connection_made.
        self._admitted()
