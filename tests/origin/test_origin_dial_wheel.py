"""A dial's connect timeout and its connection's read timeout run on the connector's timer wheel (one wheel,
shared with the edge's visitor deadlines), and still fire: 522 for a TLS or plain TCP dial that gets no
SYN+ACK, 524 for a connection whose origin never answers; neither leaves anything on the wheel. The
checks of a peer's port and server name are remembered for the last peer only once it passed them."""

from __future__ import annotations

import asyncio
import pickle
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from originlock.errors import OriginConnectTimeout, OriginSniUnusable, OriginTimeout, OriginUnreachable
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.deadline import WHEEL_RESOLUTION, TimerWheel
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.resolve import Resolver
from originlock.origin.tls import OriginTlsContexts
from originlock.testing.ports import unanswered_port

RUNNERS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {"asyncio": asyncio.run, "uvloop": uvloop.run}
#: How late a timer may fire on a loaded machine, beyond the wheel's resolution.
SLACK = 1.0


async def _lookup(host: str, _port: int) -> list[str]:
    return [host]


def _connector(timers: TimerWheel, connect: float = 5.0) -> Connector:
    loop = asyncio.get_running_loop()
    timeouts = OriginTimeouts(connect=connect, handshake=5.0)
    return Connector(loop, Resolver(_lookup, time.monotonic), OriginTlsContexts(), timeouts, timers=timers)


@pytest.mark.parametrize("loop", sorted(RUNNERS))
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "tcp"])
def test_the_connect_timeout_is_on_the_wheel_and_fires_522(loop: str, tls: bool) -> None:
    async def main() -> None:
        timers = TimerWheel(asyncio.get_running_loop())
        connector = _connector(timers, connect=0.3)
        with unanswered_port() as port:
            peer = OriginPeer("127.0.0.1", port, tls, "a.example.test" if tls else "", VerifyMode.NONE)
            start = time.monotonic()
            dial = asyncio.ensure_future(connector.connect(peer))
            await asyncio.sleep(0.1)
            assert len(timers) == 1  # the dial's connect deadline, on the wheel
            with pytest.raises(OriginConnectTimeout) as timed_out:
                await asyncio.wait_for(dial, 10)
            took = time.monotonic() - start
        assert timed_out.value.status_hint == 522
        assert 0.3 <= took <= 0.3 + WHEEL_RESOLUTION + SLACK
        assert len(timers) == 0

    RUNNERS[loop](main())


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_a_plain_dial_cancelled_from_outside_stays_cancelled_and_leaves_the_wheel(loop: str) -> None:
    async def main() -> None:
        timers = TimerWheel(asyncio.get_running_loop())
        connector = _connector(timers, connect=5.0)
        with unanswered_port() as port:
            dial = asyncio.ensure_future(connector.connect(OriginPeer("127.0.0.1", port, False, "", VerifyMode.NONE)))
            await asyncio.sleep(0.1)
            dial.cancel()
            with pytest.raises(asyncio.CancelledError):
                await dial
        assert len(timers) == 0

    RUNNERS[loop](main())


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_the_read_timeout_of_a_dialled_connection_is_on_the_wheel_and_fires_524(loop: str) -> None:
    async def main() -> None:
        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 16)  # takes the request, never answers
            await asyncio.sleep(5)
            writer.close()

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        timers = TimerWheel(asyncio.get_running_loop())
        connector = _connector(timers)
        conn = await connector.connect(OriginPeer("127.0.0.1", port, False, "", VerifyMode.NONE))
        assert len(timers) == 1  # the connection's deadline, the connect timeout's until now, disarmed
        conn.start_exchange(b"GET")
        conn.write(b"GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n")
        start = time.monotonic()
        waiting = asyncio.ensure_future(conn.next_event(0.3))
        await asyncio.sleep(0.1)
        assert len(timers) == 1  # the connection's read deadline, on the connector's wheel
        with pytest.raises(OriginTimeout) as timed_out:
            await waiting
        assert timed_out.value.status_hint == 524
        assert 0.3 <= time.monotonic() - start <= 0.3 + WHEEL_RESOLUTION + SLACK
        conn.close()
        assert len(timers) == 0
        server.close()

    RUNNERS[loop](main())


def test_only_a_peer_that_passed_the_checks_is_remembered() -> None:
    async def main() -> None:
        connector = _connector(TimerWheel(asyncio.get_running_loop()))
        bad_port = OriginPeer("127.0.0.1", 70000, True, "a.example.test", VerifyMode.NONE)
        bad_name = OriginPeer("127.0.0.1", 443, True, "a..example.test", VerifyMode.NONE)
        for _ in range(2):  # refused every time, not only at the first dial
            with pytest.raises(OriginUnreachable):
                await connector.connect(bad_port)
            with pytest.raises(OriginSniUnusable):
                await connector.connect(bad_name)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))  # not listening: the dial gets as far as a refused connection
            good = OriginPeer("127.0.0.1", closed.getsockname()[1], True, "a.example.test", VerifyMode.NONE)
            for _ in range(2):
                with pytest.raises(Exception) as refused:
                    await connector.connect(good)
                assert getattr(refused.value, "status_hint", None) == 521
        with pytest.raises(OriginSniUnusable):  # the next peer is checked, whatever the last one was
            await connector.connect(bad_name)

    uvloop.run(main())


def test_the_timeouts_survive_pickling() -> None:
    """The edge's configuration, which holds them, is pickled to its worker processes: with the connector
    compiled, a frozen dataclass defined in its module could not be unpickled."""
    timeouts = OriginTimeouts(connect=1.5, handshake=2.5, read=3.5, write=4.5)
    assert pickle.loads(pickle.dumps(timeouts)) == timeouts
