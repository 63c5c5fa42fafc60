"""Revoked Origin CA certificates at the origin connection: the peer carries them (and names them in its pool
key), the connector refuses a revoked leaf after a real TLS handshake, and the pool closes connections made
under the previous revocation set."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from originlock.edge.loops import loop_factory
from originlock.errors import OriginCertInvalid
from originlock.origin.connection import OriginConnection
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.peer import NO_REVOCATIONS, OriginPeer, VerifyMode, trust_id
from originlock.origin.pool import OriginPool
from originlock.origin.resolve import Resolver, getaddrinfo_lookup
from originlock.origin.tls import OriginTlsContexts
from originlock.pipeline import PipelineSettings, RequestContext
from originlock.pipeline.builtin.origin_select import select_origin
from originlock.snapshot.model import Snapshot, SslMode
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.tls.issue import Issued

PKI = TestPki()
SERVER = PKI.server("origin.test", "b.origin.test")
OTHER = PKI.server("other.test")
SETTINGS = PipelineSettings(origin_https_port=8443, origin_http_port=8080)
CA_PEM = PKI.origin_ca.cert_pem.encode()


def _fingerprint(issued: Issued) -> str:
    return hashlib.sha256(issued.cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _revoking(snapshot: Snapshot, revoked: dict[str, str]) -> Snapshot:
    pki = dataclasses.replace(snapshot.pki, revoked_origin_certs=revoked)
    return dataclasses.replace(snapshot, pki=pki)


def _peer(snapshot: Snapshot, host: str) -> OriginPeer:
    ctx = RequestContext(
        ray_id="r-OLK", snapshot=snapshot, scheme="https", client_ip="192.0.2.1", client_port=1, started=0
    )
    ctx.route = snapshot.route_for(host)
    ctx.host = host
    return select_origin(ctx, SETTINGS)


# -- the peer -----------------------------------------------------------------------------------------


def test_strict_peers_name_the_revocations_in_their_pool_key() -> None:
    routes = (
        make_route("strict.example.test", ssl_mode=SslMode.STRICT),
        make_route("pull.example.test", ssl_mode=SslMode.ORIGIN_PULL),
        make_route("full.example.test", ssl_mode=SslMode.FULL),
    )
    before = make_snapshot(PKI, *routes)
    after = _revoking(make_snapshot(PKI, *routes, generation=2), {_fingerprint(SERVER): "4242"})
    for host in ("strict.example.test", "pull.example.test"):
        old, new = _peer(before, host), _peer(after, host)
        assert dict(old.revoked) == {} and old.revocation == ""
        assert dict(new.revoked) == {_fingerprint(SERVER): "4242"}
        assert new.revocation == after.pki.revocation_id != ""
        # A connection verified before the revocation is filed under a key the new snapshot never asks for.
        assert old.pool_key() != new.pool_key()
        assert new.pool_key()[5] == f"{trust_id(CA_PEM)}/{after.pki.revocation_id}"
        # ...but the TLS context (its trust store is the same) is not rebuilt for a revocation.
        contexts = OriginTlsContexts()
        assert contexts.for_peer(old) is contexts.for_peer(new)
    # Full does not validate the origin certificate at all: no revocation check, same key as before.
    full_old, full_new = _peer(before, "full.example.test"), _peer(after, "full.example.test")
    assert full_new.revoked is NO_REVOCATIONS and full_new.revocation == ""
    assert full_old.pool_key() == full_new.pool_key()


def test_the_peer_cache_follows_the_snapshot() -> None:
    route = make_route("strict.example.test", ssl_mode=SslMode.STRICT)
    before = make_snapshot(PKI, route)
    after = _revoking(make_snapshot(PKI, route, generation=2), {_fingerprint(SERVER): "4242"})
    first = _peer(before, "strict.example.test")
    assert _peer(before, "strict.example.test") is first  # cached per snapshot, as before
    assert _peer(after, "strict.example.test").revocation == after.pki.revocation_id


# -- the connector, against a real TLS server ----------------------------------------------------------


class TlsOrigin:
    """An asyncio TLS server presenting ``issued``; records every byte a client sends."""

    def __init__(self, tmp: Path, issued: Issued) -> None:
        import ssl

        cert, key = TestPki.write(tmp, "origin", issued)
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.received = bytearray()
        self.handshakes = 0
        self.finished = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        try:
            while data := await reader.read(65536):
                self.received += data
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self.finished.set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ctx)
        return int(self.server.sockets[0].getsockname()[1])


def _connector(loop: asyncio.AbstractEventLoop) -> Connector:
    return Connector(loop, Resolver(getaddrinfo_lookup(loop), time.monotonic), OriginTlsContexts(), OriginTimeouts())


def _strict(port: int, revoked: dict[str, str]) -> OriginPeer:
    return OriginPeer(
        "127.0.0.1",
        port,
        True,
        "origin.test",
        VerifyMode.STRICT,
        trust=trust_id(CA_PEM),
        origin_ca_pem=CA_PEM,
        revoked=revoked,
        revocation="r" if revoked else "",
    )


def _run(loop_name: str, main: Callable[[], object]) -> None:
    with asyncio.Runner(loop_factory=loop_factory(loop_name)) as runner:
        runner.run(main())  # type: ignore[arg-type]


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_connector_refuses_a_revoked_origin_certificate_with_526(tmp_path: Path, loop_name: str) -> None:
    async def main() -> None:
        origin = TlsOrigin(tmp_path, SERVER)
        port = await origin.start()
        connector = _connector(asyncio.get_running_loop())
        with pytest.raises(OriginCertInvalid) as caught:
            await connector.connect(_strict(port, {_fingerprint(OTHER): "1", _fingerprint(SERVER): "4242"}))
        assert caught.value.status_hint == 526
        assert "revoked" in caught.value.message and "4242" in caught.value.message
        assert "PRIVATE KEY" not in caught.value.message
        # The handshake happened (OpenSSL accepted the chain), then the edge hung up without a request byte.
        await asyncio.wait_for(origin.finished.wait(), 5)
        assert origin.handshakes == 1 and bytes(origin.received) == b""
        assert origin.server is not None
        origin.server.close()

    _run(loop_name, main)


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_connector_accepts_certificates_that_are_not_revoked_and_full_mode(tmp_path: Path, loop_name: str) -> None:
    async def main() -> None:
        origin = TlsOrigin(tmp_path, SERVER)
        port = await origin.start()
        connector = _connector(asyncio.get_running_loop())
        # Another certificate is revoked: this one is still trusted.
        conn = await connector.connect(_strict(port, {_fingerprint(OTHER): "1"}))
        assert not conn.closed
        conn.close()
        # Full mode checks nothing about the origin certificate, revoked or not (spec §6).
        full = OriginPeer("127.0.0.1", port, True, "origin.test", VerifyMode.NONE)
        conn = await connector.connect(full)
        assert not conn.closed
        conn.close()
        assert origin.server is not None
        origin.server.close()

    _run(loop_name, main)


# -- the pool -----------------------------------------------------------------------------------------


def test_pool_closes_connections_of_the_previous_revocation_set(tmp_path: Path) -> None:
    async def main() -> None:
        origin = TlsOrigin(tmp_path, SERVER)
        port = await origin.start()
        pool = OriginPool(_connector(asyncio.get_running_loop()), time.monotonic)
        # Before and after a revocation (of another certificate: this origin's is still good).
        before, after = _strict(port, {}), _strict(port, {_fingerprint(OTHER): "1"})
        other_host = dataclasses.replace(before, sni="b.origin.test")
        full = OriginPeer("127.0.0.1", port, True, "origin.test", VerifyMode.NONE)
        assert len({p.pool_key() for p in (before, after, other_host, full)}) == 4

        async def dial(peer: OriginPeer) -> OriginConnection:
            conn, reused = await pool.acquire(peer)
            assert not reused
            return conn

        idle, busy, idle_b, idle_full = await dial(before), await dial(before), await dial(other_host), await dial(full)
        for conn in (idle, idle_b, idle_full):
            pool.release(conn, True)

        # The first request of the snapshot with the revocation dials (a new key) and retires the old trust.
        fresh = await dial(after)
        assert idle.closed and idle_b.closed  # every strict key of the old trust, not just this host's
        assert not busy.closed  # in flight: finishes its request...
        pool.release(busy, True)
        assert busy.closed  # ...and is closed rather than pooled
        assert not idle_full.closed  # Full mode is not affected by revocations
        assert not fresh.closed

        # A late request of the old snapshot may still dial under its trust; it does not retire the new one.
        pool.release(fresh, True)
        late = await dial(before)
        assert not fresh.closed
        again, reused = await pool.acquire(after)
        assert again is fresh and reused
        pool.release(late, True)
        stats = pool.statistics()
        assert (stats.closed, stats.opened) == (3, 6)
        pool.close()
        assert origin.server is not None
        origin.server.close()

    asyncio.run(main())
