"""A closed origin connection is freed by reference counting, not left to Python's cyclic garbage collector
(issue 11: with a dial per request, ~44 objects per connection waited for a collection). Against a real nginx
origin requiring the client certificate, on uvloop (the edge's loop: the stdlib loop's own transports keep
cycles after ``start_tls`` that the edge cannot break); the count is what ``gc.collect()`` finds with the
cyclic collector off while the dials ran."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.edge.loops import loop_factory
from originlock.errors import OriginBadResponse
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.resolve import Resolver, getaddrinfo_lookup
from originlock.origin.tls import OriginTlsContexts
from originlock.proto.events import MessageEnded, ResponseReceived
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.pki import TestPki
from originlock.testing.require import require_executable

REQUEST = b"GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n"


PKI = TestPki()


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    pki = PKI
    nginx = require_executable("nginx")
    tmp = tmp_path_factory.mktemp("cycles")
    port = free_port()
    cert, key = pki.write(tmp, "origin", pki.server("origin.test"))
    trusted = tmp / "pull-ca.pem"
    trusted.write_text(pki.origin_pull_ca.cert_pem)
    block = (
        f"server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};\n"
        f"  ssl_client_certificate {trusted}; ssl_verify_client on; keepalive_timeout 0;\n"
        '  location / { return 200 "ok\\n"; } }\n'
    )
    proc = NginxProcess(nginx, Path(tmp) / "nginx", block, ports=[port]).start()
    try:
        yield port
    finally:
        proc.stop()


async def _exchange(connector: Connector, peer: OriginPeer) -> int:
    """One dial, one request, the response read to its end (nginx then closes); the status."""
    conn = await connector.connect(peer)
    try:
        conn.start_exchange(b"GET")
        conn.write(REQUEST)
        head = await conn.next_event(5.0)
        assert isinstance(head, ResponseReceived)
        while not isinstance(await conn.next_event(5.0), MessageEnded):
            pass
        conn.finish_exchange(True)
        return head.status
    finally:
        conn.close()


#: Where the objects of a connection cycle come from: a cycle through a connection holds some of these.
OUR_MODULES = ("originlock", "uvloop", "ssl", "_ssl", "httptools", "asyncio")


def _our_garbage() -> int:
    """What ``gc.collect()`` finds of the connection's kind of objects: other tests' threads (a PostgreSQL
    listener...) may leave garbage of their own in the same process meanwhile."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sum(1 for obj in gc.garbage if type(obj).__module__.partition(".")[0] in OUR_MODULES)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)


def _garbage_per_dial(peer: OriginPeer, dials: int, *, status: int = 200) -> int:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        resolver = Resolver(getaddrinfo_lookup(loop), time.monotonic)
        connector = Connector(loop, resolver, OriginTlsContexts(), OriginTimeouts())
        for warm in range(dials + 2):  # the first two warm the context and the loop
            assert await _exchange(connector, peer) == status
            await asyncio.sleep(0.01)  # the transport's close callbacks run
            if warm == 1:
                gc.collect()  # what warming left (contexts, the resolver's cache) is not counted
        return _our_garbage()

    gc.collect()
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
            return runner.run(main())
    finally:
        gc.enable()


def test_a_closed_origin_connection_is_not_left_to_the_cyclic_gc(origin: int) -> None:
    peer = OriginPeer("127.0.0.1", origin, True, "origin.test", VerifyMode.NONE, client_cert=PKI.client("zone-a"))
    assert _garbage_per_dial(peer, 5) == 0


def test_a_refused_origin_exchange_is_not_left_to_the_cyclic_gc(origin: int) -> None:
    # No client certificate: nginx answers 400 and closes.
    peer = OriginPeer("127.0.0.1", origin, True, "origin.test", VerifyMode.NONE)
    assert _garbage_per_dial(peer, 5, status=400) == 0


def test_an_origin_closing_mid_response_is_not_left_to_the_cyclic_gc(origin: int) -> None:
    # The parser is released while the exchange still holds unread events and an error.
    async def main() -> int:
        loop = asyncio.get_running_loop()
        connector = Connector(
            loop, Resolver(getaddrinfo_lookup(loop), time.monotonic), OriginTlsContexts(), OriginTimeouts()
        )
        peer = OriginPeer("127.0.0.1", origin, True, "origin.test", VerifyMode.NONE, client_cert=PKI.client("zone-a"))
        await _exchange(connector, peer)
        gc.collect()
        for _ in range(3):
            conn = await connector.connect(peer)
            conn.start_exchange(b"GET")
            conn.write(REQUEST)
            await asyncio.sleep(0.05)  # the response and the close arrive; nothing is read yet
            assert conn.closed
            assert isinstance(conn.next_event_nowait(), ResponseReceived)
            with pytest.raises(OriginBadResponse):  # a new exchange on the closed connection is refused
                conn.parser.start(b"GET")
                conn.parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
            conn.close()
            del conn
        return _our_garbage()

    gc.collect()
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
            assert runner.run(main()) == 0
    finally:
        gc.enable()
