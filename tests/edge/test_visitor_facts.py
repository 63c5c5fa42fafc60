"""What the edge learns about a visitor's TLS connection (server name, version, ALPN) is read from the ``_ssl``
object under ``ssl.SSLObject`` (edge/visitor.py ``tls_object``): the same values as ``ssl.py``'s wrappers,
over a real handshake, for TLS 1.2 and 1.3, with and without SNI, and with an object that has no C object."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from originlock.edge.admission import Acceptor
from originlock.edge.config import EdgeConfig
from originlock.edge.http1 import Http1Connection
from originlock.edge.http2 import Http2Connection
from originlock.edge.idle import IdleGate
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.edge.state import EdgeState
from originlock.edge.visitor import Visitor, tls_object
from originlock.testing.memory_tls import MemoryEnd, handshake
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.tls.memory import load_chain_from_memory

PKI = TestPki()


def _handshake(version: ssl.TLSVersion, server_name: str | None, alpn: list[str]) -> ssl.SSLObject:
    """The server side of a completed in-memory handshake."""
    leaf = PKI.server("a.example.test", ca=PKI.edge_ca)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_chain_from_memory(server_ctx, (leaf.cert_pem + PKI.edge_ca.cert_pem).encode(), leaf.key_pem)
    server_ctx.set_alpn_protocols(["h2", "http/1.1"])
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.maximum_version = version
    client_ctx.set_alpn_protocols(alpn)
    server = MemoryEnd(server_ctx, server_side=True)
    handshake(MemoryEnd(client_ctx, server_side=False, server_hostname=server_name), server)
    return server.obj


class _Transport:
    def __init__(self, ssl_obj: Any) -> None:
        self.ssl_obj = ssl_obj
        self.protocol: asyncio.BaseProtocol | None = None
        self.asked: list[str] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        self.asked.append(name)
        if name == "peername":
            return ("192.0.2.7", 50123)
        return self.ssl_obj if name == "ssl_object" else default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("server_name", ["a.example.test", None])
def test_visitor_facts_are_what_the_ssl_module_reports(version: ssl.TLSVersion, server_name: str | None) -> None:
    server = _handshake(version, server_name, ["http/1.1"])
    assert tls_object(server) is not server  # CPython's layout: the C object is used
    visitor = Visitor("https")
    visitor.learn(_Transport(server))  # type: ignore[arg-type]
    assert (visitor.client_ip, visitor.client_port) == ("192.0.2.7", 50123)
    # CPython reports no server name on the server side (the SNI callback sees it; the object keeps none).
    assert visitor.sni == server.server_hostname
    assert visitor.tls_version == server.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2"}.get(version, "TLSv1.3")


def test_an_object_without_a_c_object_is_read_as_it_is() -> None:
    class Plain:
        server_hostname = "b.example.test"

        def version(self) -> str:
            return "TLSv1.3"

    plain = Plain()
    assert tls_object(plain) is plain


@pytest.fixture()
def state() -> Iterator[EdgeState]:
    loop = asyncio.new_event_loop()
    try:
        yield EdgeState(loop, EdgeConfig(), MemorySnapshotSource(make_snapshot(PKI, make_route("a.example.test"))))
    finally:
        loop.close()


@pytest.mark.parametrize(("offered", "kind"), [(["h2", "http/1.1"], Http2Connection), (["http/1.1"], Http1Connection)])
def test_the_protocol_follows_the_negotiated_alpn(state: EdgeState, offered: list[str], kind: type) -> None:
    server = _handshake(ssl.TLSVersion.TLSv1_3, "a.example.test", offered)
    transport = _Transport(server)
    Acceptor(state, "https", IdleGate())().connection_made(transport)  # type: ignore[arg-type]
    protocol = transport.protocol
    assert isinstance(protocol, Http1Connection | Http2Connection) and isinstance(protocol, kind)
    assert protocol.visitor.tls_version == "TLSv1.3"
    assert (protocol.visitor.client_ip, protocol.visitor.client_port) == ("192.0.2.7", 50123)
    # The TLS object is looked up once per connection: the admission reads ALPN and the version from it.
    assert sorted(transport.asked) == ["peername", "ssl_object"]
    assert protocol.visitor.sni == server.server_hostname


class _LoudHost(str):
    """A host that fails the test if the visitor converts it again (``str()`` of a str is a wasted call)."""

    def __str__(self) -> str:
        raise AssertionError("the peer's host was converted")


@pytest.mark.parametrize(
    "peer",
    [(_LoudHost("192.0.2.7"), 50123), (_LoudHost("2001:db8::7"), 50123, 0, 0)],
)
def test_the_peer_address_is_kept_as_the_loop_gives_it(peer: tuple[object, ...]) -> None:
    # uvloop and asyncio give (str, int) and (str, int, flowinfo, scope_id): read as they are (issue 11,
    # visitor7); fails where learn() called str() and int() on them.
    class Peer(_Transport):
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return peer if name == "peername" else super().get_extra_info(name, default)

    visitor = Visitor("https", tls_version="TLSv1.3")
    visitor.learn(Peer(None))  # type: ignore[arg-type]
    assert (visitor.client_ip, visitor.client_port) == (peer[0], 50123)
    assert visitor.client_ip is peer[0]


def test_a_peer_address_of_other_types_is_converted() -> None:
    class Peer(_Transport):
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return (ipaddress.ip_address("192.0.2.9"), "50124") if name == "peername" else default

    visitor = Visitor("https", tls_version="TLSv1.3")
    visitor.learn(Peer(None))  # type: ignore[arg-type]
    assert (visitor.client_ip, visitor.client_port) == ("192.0.2.9", 50124)
    assert type(visitor.client_ip) is str and type(visitor.client_port) is int


def test_a_new_connection_waits_for_its_first_request_for_the_idle_time(state: EdgeState) -> None:
    conn = Http1Connection(state, "https")
    before = state.loop.time()
    conn.connection_made(_Transport(None))  # type: ignore[arg-type]
    assert conn in state.visitors.open and not conn.closed
    idle: Any = conn._idle
    assert idle.armed and before + state.idle_timeout <= idle._at <= state.loop.time() + state.idle_timeout
    conn.connection_lost(None)


def test_a_new_connection_on_a_draining_edge_is_closed_at_once(state: EdgeState) -> None:
    state.visitors.draining = True
    conn = Http1Connection(state, "https")
    conn.connection_made(_Transport(None))  # type: ignore[arg-type]
    assert conn.closed and conn not in state.visitors.open
    assert not conn._idle.armed
