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

from originlock.errors import OriginHandshakeFailed
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.resolve import Resolver
from originlock.origin.tls import OriginTlsContexts

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
