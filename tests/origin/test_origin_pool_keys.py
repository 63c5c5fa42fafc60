"""A connection handed out by the pool carries the very key object it was checked out with."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from originlock.origin.connection import OriginConnection
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.pool import OriginPool
from originlock.origin.resolve import Resolver, getaddrinfo_lookup
from originlock.origin.tls import OriginTlsContexts


class _OpenTransport(asyncio.Transport):
    def is_closing(self) -> bool:
        return False


def test_a_reused_connection_takes_the_checkout_key_object() -> None:
    loop = asyncio.new_event_loop()
    try:
        # A real connector (it dials nothing here): compiled, the pool's argument is type-checked.
        connector = Connector(
            loop, Resolver(getaddrinfo_lookup(loop), time.monotonic), OriginTlsContexts(), OriginTimeouts()
        )
        pool = OriginPool(connector, lambda: 0.0)
        dialled = OriginPeer("192.0.2.10", 443, True, "a.test", VerifyMode.NONE)
        later = dataclasses.replace(dialled)  # the same origin under a later snapshot: an equal key
        assert later.pool_key() == dialled.pool_key() and later.pool_key() is not dialled.pool_key()
        conn = OriginConnection(loop)
        conn.transport = _OpenTransport()
        conn.key = dialled.pool_key()
        pool._state.opened(conn.key)
        pool.release(conn, True)
        assert pool.acquire_idle(later) is conn
        assert conn.key is later.pool_key()  # so that release finds the slot by identity
        pool.release(conn, True)
        assert pool.acquire_idle(dialled) is conn and conn.key is dialled.pool_key()
        assert pool.statistics().idle == 0
    finally:
        loop.close()
