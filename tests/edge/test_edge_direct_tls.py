"""``DirectSSLContext``: uvloop drives OpenSSL's own read/write/pending, and TLS behaves exactly as before.

A real uvloop TLS server and client on loopback: small and large messages both ways (many TLS records per
read), several exchanges on one connection, and a graceful close (close_notify) seen as EOF by the peer.
"""

from __future__ import annotations

import asyncio
import ssl

import pytest
import uvloop

from originlock.testing.pki import TestPki
from originlock.tls.direct import DirectSSLContext
from originlock.tls.memory import load_chain_from_memory


class _Echo(asyncio.Protocol):
    """Echoes every read, closes when the client half-closes or ends the TLS session."""

    def __init__(self, seen: list[ssl.SSLObject]) -> None:
        self._seen = seen

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._seen.append(transport.get_extra_info("ssl_object"))

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool:
        return False


def _contexts(pki: TestPki) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    leaf = pki.server("tls.test")
    server = DirectSSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_chain_from_memory(server, leaf.cert_pem.encode(), leaf.key_pem)
    client = DirectSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cadata=pki.origin_ca.cert_pem)
    return server, client


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_uvloop_tls_over_direct_objects(version: ssl.TLSVersion) -> None:
    server_ctx, client_ctx = _contexts(TestPki())
    client_ctx.maximum_version = client_ctx.minimum_version = version

    async def main() -> None:
        seen: list[ssl.SSLObject] = []
        server = await asyncio.get_running_loop().create_server(lambda: _Echo(seen), "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="tls.test")
        for size in (1, 100, 70_000, 1_000_000):  # above 16 KiB: several records per read
            payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            writer.write(payload)
            assert await reader.readexactly(len(payload)) == payload
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.version() == ("TLSv1.3" if version is ssl.TLSVersion.TLSv1_3 else "TLSv1.2")
        for obj in (ssl_object, seen[0]):
            assert isinstance(obj, ssl.SSLObject)
            # uvloop calls these straight into the _ssl module: no Python frame in between.
            assert {type(vars(obj)[name]).__name__ for name in ("read", "write", "pending")} == {
                "builtin_function_or_method"
            }
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    uvloop.run(main())


def test_a_graceful_close_reaches_the_peer_as_eof() -> None:
    server_ctx, client_ctx = _contexts(TestPki())

    async def main() -> None:
        got_eof = asyncio.get_running_loop().create_future()

        class _Client(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                transport.write(b"ping")  # type: ignore[attr-defined]

            def data_received(self, data: bytes) -> None:
                pass

            def eof_received(self) -> bool:
                got_eof.set_result(True)
                return False

        class _Server(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                self.transport.close()  # TLS close_notify, then TCP FIN

        server = await asyncio.get_running_loop().create_server(_Server, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await asyncio.get_running_loop().create_connection(
            _Client, "127.0.0.1", port, ssl=client_ctx, server_hostname="tls.test"
        )
        assert await asyncio.wait_for(got_eof, 10)
        transport.close()
        server.close()
        await server.wait_closed()

    uvloop.run(main())
