"""One deadline per dial: the new connection's read deadline is the dial's connect timeout until the dial is
over (docs/performance.md, issue 11, dial4), and then only the read timeout's again: a connection established
before its connect timeout is never cancelled by it, however long its exchange waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from originlock.errors import OriginConnectTimeout
from originlock.origin.connection import OriginConnection
from originlock.origin.connector import Connector, OriginDial, OriginTimeouts
from originlock.origin.deadline import TimerWheel
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.resolve import Resolver
from originlock.origin.tls import OriginTlsContexts
from originlock.proto.events import MessageEnded, ResponseReceived
from originlock.testing.ports import unanswered_port

RUNNERS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


async def _lookup(host: str, _port: int) -> list[str]:
    return [host]


def _connector(timers: TimerWheel, connect: float) -> Connector:
    loop = asyncio.get_running_loop()
    timeouts = OriginTimeouts(connect=connect, handshake=5.0)
    return Connector(loop, Resolver(_lookup, time.monotonic), OriginTlsContexts(), timeouts, timers=timers)


async def _dial(dial: OriginDial) -> OriginConnection:
    """The steps OriginPool.acquire takes, with the dial in the test's hands."""
    connecting = dial.start()
    try:
        await connecting
    except BaseException as exc:
        raise dial.failed(exc)  # noqa: B904 (failed() sets the cause)
    return dial.established()


def _registered(timers: TimerWheel) -> list[object]:
    return [deadline for bucket in timers._buckets.values() for deadline in bucket]


@pytest.mark.parametrize("loop", sorted(RUNNERS))
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "tcp"])
def test_the_connect_timeout_is_the_connections_read_deadline(loop: str, tls: bool) -> None:
    async def main() -> None:
        timers = TimerWheel(asyncio.get_running_loop())
        connector = _connector(timers, connect=0.3)
        with unanswered_port() as port:
            peer = OriginPeer("127.0.0.1", port, tls, "a.example.test" if tls else "", VerifyMode.NONE)
            dial = connector.dial(peer)
            dialling = asyncio.ensure_future(_dial(dial))
            await asyncio.sleep(0.1)
            conn = dial()  # the protocol factory: the connection being dialled
            # The only deadline on the wheel is the connection's own, armed for the connect timeout.
            assert _registered(timers) == [conn._read_deadline]
            assert conn._read_deadline.armed
            with pytest.raises(OriginConnectTimeout) as timed_out:
                await asyncio.wait_for(dialling, 10)
        assert timed_out.value.status_hint == 522
        assert conn.closed
        assert len(timers) == 0

    RUNNERS[loop](main())


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_an_established_connection_outlives_its_connect_timeout(loop: str) -> None:
    async def main() -> None:
        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 16)
            await asyncio.sleep(0.5)  # well past the connect timeout (0.1 s) and its wheel bucket
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        timers = TimerWheel(asyncio.get_running_loop())
        connector = _connector(timers, connect=0.1)
        dial = connector.dial(OriginPeer("127.0.0.1", port, False, "", VerifyMode.NONE))
        conn = await _dial(dial)
        assert not conn._read_deadline.armed  # the dial is over: disarmed until the exchange arms it
        conn.start_exchange(b"GET")
        conn.write(b"GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n")
        # Neither the task nor the connection is touched by the passing connect timeout.
        assert isinstance(await conn.next_event(5.0), ResponseReceived)
        assert isinstance(await conn.next_event(5.0), MessageEnded)
        assert conn.error is None
        conn.close()
        assert len(timers) == 0
        server.close()

    RUNNERS[loop](main())
