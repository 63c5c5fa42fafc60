"""The cost floor of *any* Python edge on uvloop: a TLS-in, pooled-mTLS-out byte relay that does nothing.

No parsing, no routing, no header rewriting, no error handling: each visitor read is written as is to an
idle origin connection (one identity, one pool) and the origin's next read is written back, which is
only correct because the benchmark's requests and responses each fit in one read. Whatever an edge
written in Python on asyncio/uvloop does per request costs at least this much; ``edge_vs_nginx.py
--floor`` measures it in the same run as the real edge and nginx, so the gap splits into "our code"
(edge - floor) and "the runtime: uvloop's TLS transport, the interpreter" (floor - nginx).

``close_visitors=True`` is the new-visitor shape's floor (``product_vs_nginx.py --floor``): the origin's
``Connection: keep-alive`` is turned into ``Connection: close`` (one ``bytes.replace``; the request's
``Connection: close`` into ``keep-alive``, so the origin connection stays pooled) and the visitor
connection is closed after the response, so every request pays a visitor TLS handshake (resumed with the
server context's default session tickets, as the product's are) and nothing else.

``dial_origins=True`` is the new-origin shapes' floor: every request dials the origin (TCP connect and the
mTLS handshake in one ``create_connection``), the origin's ``Connection: close`` is turned into
``keep-alive`` for the visitor (whose connection stays open, as the product's does), and the origin
connection is closed after its response. Each dial offers the previous connection's TLS session through
the product's own :class:`~originlock.tls.direct.DirectSSLContext` (the one way to resume a client session
under uvloop), so against an origin that offers resumption the floor resumes as the product does, and
against one that does not it makes the same full handshake.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import cast

from originlock.tls.direct import DirectSSLContext


class _Origin(asyncio.Protocol):
    def __init__(self, relay: _Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.visitor: _Visitor | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        visitor = self.visitor
        if self.relay.dial_origins:
            if visitor is not None and visitor.transport is not None:
                visitor.transport.write(data.replace(b"Connection: close", b"Connection: keep-alive", 1))
            self.visitor = None
            if self.transport is not None:
                self.transport.close()
            return
        if visitor is not None and visitor.transport is not None:
            if self.relay.close_visitors:
                visitor.transport.write(data.replace(b"Connection: keep-alive", b"Connection: close", 1))
                visitor.transport.close()
            else:
                visitor.transport.write(data)
            self.visitor = None
            self.relay.idle.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.relay.idle:
            self.relay.idle.remove(self)


class _Visitor(asyncio.Protocol):
    def __init__(self, relay: _Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        relay = self.relay
        if relay.close_visitors:  # the visitor's "Connection: close" is not the pooled origin connection's
            data = data.replace(b"Connection: close", b"Connection: keep-alive", 1)
        if relay.idle and not relay.dial_origins:
            origin = relay.idle.pop()
            origin.visitor = self
            assert origin.transport is not None
            origin.transport.write(data)
        else:
            asyncio.get_running_loop().create_task(relay.dial(self, data))


class _Relay:
    def __init__(
        self,
        directory: Path,
        origin_port: int,
        chain: str,
        server_name: str,
        close_visitors: bool,
        dial_origins: bool = False,
    ) -> None:
        self.origin_port = origin_port
        self.server_name = server_name
        self.close_visitors = close_visitors
        self.dial_origins = dial_origins
        self.idle: list[_Origin] = []
        self.client = DirectSSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client.load_verify_locations(cafile=str(directory / "origin-ca.pem"))
        self.client.load_cert_chain(directory / chain, directory / "zone-a.key")
        #: The TLS object of the last origin connection: its session is offered to the next dial.
        self.last: ssl.SSLObject | None = None

    async def dial(self, visitor: _Visitor, data: bytes) -> None:
        offer = self.client.offer_session(self.server_name, self.last)
        try:
            transport, origin = await asyncio.get_running_loop().create_connection(
                lambda: _Origin(self), "127.0.0.1", self.origin_port, ssl=self.client, server_hostname=self.server_name
            )
        finally:
            self.client.withdraw(offer)
        self.last = transport.get_extra_info("ssl_object")
        origin.visitor = visitor
        assert origin.transport is not None
        origin.transport.write(data)


async def serve_relay(
    directory: Path,
    port: int,
    origin_port: int,
    *,
    chain: str = "zone-a-chain.pem",
    server_name: str = "a.test",
    close_visitors: bool = False,
    dial_origins: bool = False,
) -> None:
    relay = _Relay(directory, origin_port, chain, server_name, close_visitors, dial_origins)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(directory / "edge.pem", directory / "edge.key")
    server = await asyncio.get_running_loop().create_server(
        lambda: _Visitor(relay), "127.0.0.1", port, ssl=server_ctx, backlog=1024
    )
    async with server:
        await server.serve_forever()
