"""The pool dials in its own coroutine (origin/connector.py, ``OriginDial``): what ``Connector.connect`` did
for it still holds through it: 522 by the connect timeout, 521 for a refused connection, an outside
cancellation (the visitor went away) stays a cancellation; none of them leaves the dial counted against its
origin or on the timer wheel. ``idle_checked`` skips the idle connections only, not the dial."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from originlock.errors import OriginConnectTimeout, OriginRefused
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.deadline import TimerWheel
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.pool import OriginPool
from originlock.origin.resolve import Resolver
from originlock.origin.tls import OriginTlsContexts
from originlock.testing.ports import unanswered_port

RUNNERS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


async def _lookup(host: str, _port: int) -> list[str]:
    return [host]


def _pool(timers: TimerWheel, connect: float = 5.0) -> OriginPool:
    loop = asyncio.get_running_loop()
    timeouts = OriginTimeouts(connect=connect, handshake=5.0)
    connector = Connector(loop, Resolver(_lookup, time.monotonic), OriginTlsContexts(), timeouts, timers=timers)
    return OriginPool(connector, time.monotonic)


@pytest.mark.parametrize("loop", sorted(RUNNERS))
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "tcp"])
def test_a_pool_dial_times_out_522_and_leaves_nothing_counted(loop: str, tls: bool) -> None:
    async def main() -> None:
        timers = TimerWheel(asyncio.get_running_loop())
        pool = _pool(timers, connect=0.2)
        with unanswered_port() as port:
            peer = OriginPeer("127.0.0.1", port, tls, "a.example.test" if tls else "", VerifyMode.NONE)
            dial = asyncio.ensure_future(pool.acquire(peer))
            await asyncio.sleep(0.05)
            assert pool.open_per_origin() == {("127.0.0.1", port): 1} and len(timers) == 1
            with pytest.raises(OriginConnectTimeout) as timed_out:
                await asyncio.wait_for(dial, 10)
        assert timed_out.value.status_hint == 522
        assert pool.open_per_origin() == {} and len(timers) == 0
        assert pool.statistics().busy == 0

    RUNNERS[loop](main())


@pytest.mark.parametrize("loop", sorted(RUNNERS))
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "tcp"])
def test_a_pool_dial_cancelled_from_outside_stays_cancelled(loop: str, tls: bool) -> None:
    async def main() -> None:
        timers = TimerWheel(asyncio.get_running_loop())
        pool = _pool(timers)
        with unanswered_port() as port:
            peer = OriginPeer("127.0.0.1", port, tls, "a.example.test" if tls else "", VerifyMode.NONE)
            dial = asyncio.ensure_future(pool.acquire(peer))
            await asyncio.sleep(0.05)
            dial.cancel()
            with pytest.raises(asyncio.CancelledError):
                await dial
            assert dial.cancelled()
        assert pool.open_per_origin() == {} and len(timers) == 0

    RUNNERS[loop](main())


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "tcp"])
def test_a_refused_pool_dial_is_521(tls: bool) -> None:
    async def main() -> None:
        timers = TimerWheel(asyncio.get_running_loop())
        pool = _pool(timers)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))  # not listening
            port = closed.getsockname()[1]
            peer = OriginPeer("127.0.0.1", port, tls, "a.example.test" if tls else "", VerifyMode.NONE)
            with pytest.raises(OriginRefused) as refused:
                await pool.acquire(peer)
        assert refused.value.status_hint == 521
        assert isinstance(refused.value.__cause__, ConnectionRefusedError)
        assert pool.open_per_origin() == {} and len(timers) == 0

    uvloop.run(main())


def test_idle_checked_dials_without_taking_an_idle_connection() -> None:
    async def main() -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()
            writer.close()

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = _pool(TimerWheel(asyncio.get_running_loop()))
        peer = OriginPeer("127.0.0.1", port, False, "", VerifyMode.NONE)
        first, reused = await pool.acquire(peer)
        assert not reused
        pool.release(first, True)
        assert pool.statistics().idle == 1
        second, reused = await pool.acquire(peer, idle_checked=True)
        assert not reused and second is not first
        assert pool.statistics().idle == 1  # still there for the next request
        again, reused = await pool.acquire(peer)
        assert reused and again is first
        for conn in (first, second):
            pool.release(conn, False)
        assert pool.open_per_origin() == {}
        server.close()

    uvloop.run(main())
