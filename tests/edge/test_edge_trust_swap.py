"""A snapshot that revokes an Origin CA certificate closes the idle connections verified before it at the
swap, not only when the next strict request dials (they would never be reused either way: their key differs)."""

from __future__ import annotations

import asyncio
import dataclasses

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.edge.state import EdgeState
from originlock.origin.connection import OriginConnection
from originlock.origin.peer import OriginPeer, VerifyMode, strict_pool_trust, trust_id
from originlock.testing.pki import TestPki, make_route, make_snapshot


def test_a_new_revocation_set_closes_old_strict_connections_at_the_swap() -> None:
    loop = asyncio.new_event_loop()
    try:
        pki = TestPki()
        first = make_snapshot(pki, make_route("a.test"))
        source = MemorySnapshotSource(first)
        state = EdgeState(loop, EdgeConfig(), source)
        ca = first.pki.origin_ca_cert_pem
        strict = OriginPeer("127.0.0.1", 443, True, "a.test", VerifyMode.STRICT, trust_id(ca), origin_ca_pem=ca)
        full = OriginPeer("127.0.0.1", 443, True, "a.test", VerifyMode.NONE)
        assert strict.pool_key()[5] == strict_pool_trust(first.pki)
        conns = {}
        for name, peer in (("strict", strict), ("full", full)):
            # Never connected: the pool only files it by key and, for this test, closes it. A real object, so
            # that the compiled pool (tests/packaging) accepts it.
            conn = conns[name] = OriginConnection(loop)
            conn.key = peer.pool_key()
            state.pool._state.opened(conn.key)
            state.pool.release(conn, True)

        state.snapshot()  # same snapshot: nothing happens
        assert not conns["strict"].closed

        revoked = dataclasses.replace(first.pki, revoked_origin_certs={"ab" * 32: "cert-1"})
        source.swap(dataclasses.replace(first, generation=2, pki=revoked))
        state.snapshot()
        assert conns["strict"].closed  # verified before the revocation: closed at the swap
        assert not conns["full"].closed  # Full mode checks no revocations
        assert state.pool.statistics().idle == 1
    finally:
        loop.close()
