"""Origin TLS sessions go only to the dial they were kept for: a dial's offer travels in its own task's
context, so a dial without a session never takes the session another dial to the same server name
offered (another origin port behind the same SNI), whatever order their TLS starts in; and dials
through the FIPS and the ordinary context to one origin, one after the other and at once, all complete,
each resuming only its own context's session."""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.resolve import Resolver
from originlock.origin.tls import OriginTlsContexts
from originlock.testing.memory_tls import MemoryEnd, handshake
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.pki import TestPki
from originlock.testing.require import require_executable

SNI = "app.example.test"


def _server_context(pki: TestPki, tmp: Path) -> ssl.SSLContext:
    cert, key = pki.write(tmp, "origin", pki.server(SNI))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # a session id at once, without reading tickets
    ctx.load_cert_chain(cert, key)
    return ctx


def _client(ctx: ssl.SSLContext) -> MemoryEnd:
    """The client end of an in-memory TLS connection to the origin's name."""
    return MemoryEnd(ctx, server_side=False, server_hostname=SNI)


def test_a_dial_without_a_session_does_not_take_another_dials_offer(tmp_path: Path) -> None:
    contexts = OriginTlsContexts()
    at_a = OriginPeer("127.0.0.1", 8443, True, SNI, VerifyMode.NONE)
    at_b = OriginPeer("127.0.0.1", 9443, True, SNI, VerifyMode.NONE)  # same SNI, another origin port
    ctx = contexts.for_peer(at_a)
    assert contexts.for_peer(at_b) is ctx  # one context: offers for both go through it
    server_ctx = _server_context(TestPki(), tmp_path)
    client = _client(ctx)
    handshake(client, MemoryEnd(server_ctx, server_side=True))
    session = client.obj.session
    assert session is not None and session.id
    contexts.remember(at_a, ctx, client.obj)

    # Each dial runs in its own task, so in its own context; the loop starts a dial's TLS in that context
    # (tls/direct.py), in whatever order the TCP connections complete: here b's first.
    dial_a, dial_b = contextvars.copy_context(), contextvars.copy_context()
    offer_a = dial_a.run(contexts.offer_session, at_a, ctx)
    offer_b = dial_b.run(contexts.offer_session, at_b, ctx)
    tls_b = dial_b.run(_client, ctx).obj
    tls_a = dial_a.run(_client, ctx).obj
    assert tls_b.session is None  # origin b is never offered origin a's session
    assert tls_a.session is not None and tls_a.session.id == session.id
    assert offer_a.taken and offer_b.taken
    # A second TLS start in a dial's context (none is made) would not take the offer again.
    assert dial_a.run(_client, ctx).obj.session is None
    dial_a.run(ctx.withdraw, offer_a)
    dial_b.run(ctx.withdraw, offer_b)

    # A TLS start outside any dial's context takes no offer, even while one is pending elsewhere.
    pending = dial_a.run(contexts.offer_session, at_a, ctx)
    assert _client(ctx).obj.session is None
    assert not pending.taken
    # A withdrawn offer is not taken by a later TLS start in its context.
    dial_a.run(ctx.withdraw, pending)
    assert dial_a.run(_client, ctx).obj.session is None


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """nginx offering a FIPS suite and a non-FIPS one over TLS 1.2, with tickets and a session cache, on two
    ports that share them (either port would resume the other's sessions if offered)."""
    nginx = require_executable("nginx")
    tmp = tmp_path_factory.mktemp("offers")
    pki = TestPki()
    cert, key = pki.write(tmp, "origin", pki.server(SNI))
    port, other = free_port(), free_port()
    block = (
        f"  server {{ listen 127.0.0.1:{port} ssl; listen 127.0.0.1:{other} ssl;\n"
        f"    ssl_certificate {cert}; ssl_certificate_key {key};\n"
        "    ssl_protocols TLSv1.2; ssl_session_cache shared:O:1m; ssl_session_tickets on;\n"
        "    ssl_ciphers ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256;\n"
        '    location / { return 200 "ok\\n"; } }\n'
    )
    proc = NginxProcess(nginx, tmp / "nginx", block, ports=[port, other]).start()
    try:
        yield port, other
    finally:
        proc.stop()


async def _dial_all(port: int) -> list[tuple[bool, bool, str]]:
    """(fips, resumed, cipher) of each dial: plain and FIPS alternately, then both at once, many times."""
    loop = asyncio.get_running_loop()

    async def lookup(host: str, _port: int) -> list[str]:
        return [host]

    connector = Connector(loop, Resolver(lookup, time.monotonic), OriginTlsContexts(), OriginTimeouts())
    plain = OriginPeer("127.0.0.1", port, True, SNI, VerifyMode.NONE)
    fips = OriginPeer("127.0.0.1", port, True, SNI, VerifyMode.NONE, fips=True)
    results: list[tuple[bool, bool, str]] = []

    async def dial(peer: OriginPeer) -> None:
        conn = await connector.connect(peer)
        assert conn.transport is not None
        tls = conn.transport.get_extra_info("ssl_object")
        results.append((peer.fips, tls.session_reused, tls.cipher()[0]))
        conn.close()

    for peer in (plain, fips, plain, fips):
        await dial(peer)
    for _ in range(10):
        await asyncio.gather(*(dial(peer) for peer in (plain, fips, fips, plain)))
    return results


def test_fips_and_plain_dials_to_one_origin_each_resume_their_own(origin: tuple[int, int]) -> None:
    results = uvloop.run(_dial_all(origin[0]))
    assert len(results) == 44
    for fips, _, cipher in results:
        assert ("GCM" in cipher) if fips else ("CHACHA20" in cipher or "GCM" in cipher), (fips, cipher)
    # The first dial of each context is a full handshake; the next of each resumes its own session.
    assert [reused for _, reused, _ in results[:4]] == [False, False, True, True]
    assert all(reused for _, reused, _ in results[4:])


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_concurrent_dials_to_another_port_never_resume_the_first_ports_session(
    origin: tuple[int, int], run: Callable[[Coroutine[Any, Any, list[tuple[int, bool]]]], list[tuple[int, bool]]]
) -> None:
    """Dials made in one step start their TLS when their TCP connection completes, in any order, in a loop
    callback: each dial to the first port still resumes (its offer reached its own TLS start through its
    task's context on both loops), and a dial to the second port (no session of its own yet) is never
    given the first port's session, which the shared ticket keys would let it resume."""
    first, second = origin

    async def main() -> list[tuple[int, bool]]:
        async def lookup(host: str, _port: int) -> list[str]:
            return [host]

        loop = asyncio.get_running_loop()
        connector = Connector(loop, Resolver(lookup, time.monotonic), OriginTlsContexts(), OriginTimeouts())
        at = {port: OriginPeer("127.0.0.1", port, True, SNI, VerifyMode.NONE) for port in origin}
        results: list[tuple[int, bool]] = []

        async def dial(port: int) -> None:
            conn = await connector.connect(at[port])
            assert conn.transport is not None
            results.append((port, conn.transport.get_extra_info("ssl_object").session_reused))
            conn.close()

        await dial(first)
        await asyncio.gather(*(dial(port) for port in (second, first) * 6))
        return results

    results = run(main())
    assert results[0] == (first, False)
    assert sorted(results[1:]) == sorted([(first, True)] * 6 + [(second, False)] * 6)


def test_sessions_are_kept_per_identity_and_dropped_with_it(tmp_path: Path) -> None:
    """Two client certificates to one origin and SNI: separate contexts, each offered only its own last
    connection's session; retiring one certificate drops its sessions and its context (the next dial under
    it builds a new one, even right after a dial of the very same peer), and a new trust drops the strict
    peers' sessions."""
    pki = TestPki()
    server_ctx = _server_context(pki, tmp_path)
    cert_a, cert_b = pki.client("zone-a", id="a"), pki.client("zone-b", id="b")
    peer_a = OriginPeer("127.0.0.1", 8443, True, SNI, VerifyMode.NONE, client_cert=cert_a)
    peer_b = OriginPeer("127.0.0.1", 8443, True, SNI, VerifyMode.NONE, client_cert=cert_b)
    origin_ca = pki.origin_ca.cert_pem.encode()
    strict = OriginPeer(
        "127.0.0.1", 8443, True, SNI, VerifyMode.STRICT, trust="t1", client_cert=cert_b, origin_ca_pem=origin_ca
    )
    contexts = OriginTlsContexts()

    def dial(peer: OriginPeer) -> ssl.SSLObject | None:
        """A dial's offer, made in a context of its own: the TLS object whose session it offers."""
        ctx = contexts.for_peer(peer)
        offer = contextvars.copy_context().run(contexts.offer_session, peer, ctx)
        client = _client(ctx)
        handshake(client, MemoryEnd(server_ctx, server_side=True))
        contexts.remember(peer, ctx, client.obj)
        return offer.resume_from

    ctx_a = contexts.for_peer(peer_a)
    assert contexts.for_peer(peer_a) is ctx_a  # the last peer's context, remembered
    assert contexts.for_peer(peer_b) is not ctx_a
    assert contexts.for_peer(peer_a) is ctx_a
    assert dial(peer_a) is None and dial(peer_b) is None  # nothing to resume yet, and not each other's
    kept_a = dial(peer_a)
    assert kept_a is not None and kept_a.context is ctx_a
    kept_b = dial(peer_b)
    assert kept_b is not None and kept_b.context is contexts.for_peer(peer_b)
    assert dial(peer_a) is not kept_a  # the newest connection's session, not an older one

    contexts.retire(frozenset({cert_b.fingerprint}))  # certificate a is gone
    assert contexts.for_peer(peer_a) is not ctx_a  # a new context, though peer_a was the last one asked for
    assert dial(peer_a) is None  # its sessions went with it
    assert dial(peer_b) is not None

    assert dial(strict) is None
    assert dial(strict) is not None
    contexts.forget_sessions(lambda key: not key.trust or key.trust == "t2")  # a new trust: t1's sessions go
    assert dial(strict) is None
    assert dial(peer_b) is not None  # Full-mode peers keep theirs
