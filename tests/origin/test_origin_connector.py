"""The connector on both event loops: an origin that accepts TCP but never answers the TLS handshake is
525 (the handshake timeout, enforced by the loop), not 522 and not a hang; IP literals need no lookup, and
a name is looked up once and then answered from the cache."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from originlock.errors import OriginConnectTimeout, OriginHandshakeFailed, OriginRefused
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.resolve import Resolver
from originlock.origin.tls import OriginTlsContexts
from originlock.testing.ports import unanswered_port

RUNNERS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_a_silent_tls_origin_is_525(loop: str) -> None:
    lookups: list[str] = []

    async def lookup(host: str, _port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    async def main() -> None:
        with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever answers
            port = silent.getsockname()[1]
            timeouts = OriginTimeouts(connect=5.0, handshake=0.3)
            connector = Connector(
                asyncio.get_running_loop(), Resolver(lookup, time.monotonic), OriginTlsContexts(), timeouts
            )
            for host in ("127.0.0.1", "origin.example.test", "origin.example.test"):
                peer = OriginPeer(host, port, True, "a.example.test", VerifyMode.NONE)
                with pytest.raises(OriginHandshakeFailed) as failure:
                    await asyncio.wait_for(connector.connect(peer), 10)
                assert failure.value.status_hint == 525

    RUNNERS[loop](main())
    assert lookups == ["origin.example.test"]  # the literal is never looked up; the name once


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_an_origin_speaking_first_is_525(loop: str) -> None:
    """An origin that greets before the ClientHello (not TLS at all) fails the handshake: 525, no crash."""

    async def lookup(host: str, _port: int) -> list[str]:
        return [host]

    async def main() -> None:
        async def greet(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220 smtp.example.test ESMTP\r\n")
            await writer.drain()
            await asyncio.sleep(2)
            writer.close()

        server = await asyncio.start_server(greet, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connector = Connector(
            asyncio.get_running_loop(),
            Resolver(lookup, time.monotonic),
            OriginTlsContexts(),
            OriginTimeouts(connect=5.0, handshake=1.0),
        )
        peer = OriginPeer("127.0.0.1", port, True, "a.example.test", VerifyMode.NONE)
        for _ in range(3):
            with pytest.raises(OriginHandshakeFailed):
                await asyncio.wait_for(connector.connect(peer), 10)
        server.close()

    RUNNERS[loop](main())


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_tls_dials_tell_a_connect_timeout_from_a_handshake_timeout_and_a_refusal(loop: str) -> None:
    """A TLS origin is dialled in one step (TCP and TLS in one ``create_connection``), yet: no SYN+ACK within
    the connect timeout is 522; a TCP connection made whose handshake outlasts the (shorter) connect timeout
    is 525 after the handshake timeout, not 522; a refused connection is 521."""

    async def lookup(host: str, _port: int) -> list[str]:
        return [host]

    async def main() -> None:
        connector = Connector(
            asyncio.get_running_loop(),
            Resolver(lookup, time.monotonic),
            OriginTlsContexts(),
            OriginTimeouts(connect=0.3, handshake=1.0),
        )
        with socket.socket() as full, socket.socket() as silent, socket.socket() as closed:
            full.bind(("127.0.0.1", 0))
            full.listen(0)
            fillers = [socket.socket() for _ in range(4)]
            try:
                for filler in fillers:  # fill the accept queue: further SYNs are dropped
                    filler.setblocking(False)
                    filler.connect_ex(full.getsockname())
                peer = OriginPeer("127.0.0.1", full.getsockname()[1], True, "a.example.test", VerifyMode.NONE)
                with pytest.raises(OriginConnectTimeout) as timed_out:
                    await asyncio.wait_for(connector.connect(peer), 10)
                assert timed_out.value.status_hint == 522
            finally:
                for filler in fillers:
                    filler.close()

            silent.bind(("127.0.0.1", 0))
            silent.listen(8)  # the kernel accepts; nobody ever answers the ClientHello
            peer = OriginPeer("127.0.0.1", silent.getsockname()[1], True, "a.example.test", VerifyMode.NONE)
            with pytest.raises(OriginHandshakeFailed) as slow:
                await asyncio.wait_for(connector.connect(peer), 10)
            assert slow.value.status_hint == 525

            closed.bind(("127.0.0.1", 0))  # bound, not listening: the kernel answers with a reset
            peer = OriginPeer("127.0.0.1", closed.getsockname()[1], True, "a.example.test", VerifyMode.NONE)
            with pytest.raises(OriginRefused) as refused:
                await asyncio.wait_for(connector.connect(peer), 10)
            assert refused.value.status_hint == 521

        # A dial cancelled from outside (the visitor left) stays a cancellation, not a 522.
        with unanswered_port() as port:
            peer = OriginPeer("127.0.0.1", port, True, "a.example.test", VerifyMode.NONE)
            dial = asyncio.ensure_future(connector.connect(peer))
            await asyncio.sleep(0.1)
            dial.cancel()
            with pytest.raises(asyncio.CancelledError):
                await dial

    RUNNERS[loop](main())
