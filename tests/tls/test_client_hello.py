"""The ClientHello's server name, parsed; and a connection capped at TLS 1.2 by it, before OpenSSL chooses the
version, against openssl s_client: the capped name gets TLS 1.2 (and no TLS 1.3 at all when that is all
the client offers) while every other name keeps TLS 1.3, even with an SNI callback switching contexts."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from originlock.testing.pki import TestPki
from originlock.testing.require import require_executable
from originlock.tls.client_hello import ClientHelloCap, server_name_of


def _extension(*entries: tuple[int, bytes]) -> bytes:
    body = b"".join(bytes([kind]) + len(name).to_bytes(2, "big") + name for kind, name in entries)
    return len(body).to_bytes(2, "big") + body


def test_server_name_of() -> None:
    assert server_name_of(_extension((0, b"App.Example.TEST."))) == "app.example.test"
    assert server_name_of(_extension((1, b"other"), (0, b"a.test"))) == "a.test"  # unknown name types skipped
    assert server_name_of(_extension((1, b"other"))) is None
    assert server_name_of(_extension((0, b""))) is None
    assert server_name_of(_extension((0, "é.test".encode()))) is None
    assert server_name_of(b"") is None
    assert server_name_of(_extension((0, b"a.test"))[:-1]) is None  # list length disagrees
    assert server_name_of(b"\x00\x05\x00\x00\x09a.t") is None  # name longer than what is there


@given(st.binary(max_size=64))
def test_server_name_of_never_raises(data: bytes) -> None:
    name = server_name_of(data)
    assert name is None or (name.isascii() and name == name.lower())


class _Server:
    """A TLS server on a thread answering with the negotiated version."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            with raw:
                try:
                    with self.ctx.wrap_socket(raw, server_side=True) as tls:
                        tls.sendall(f"{tls.version()}\n".encode())
                except (ssl.SSLError, OSError):
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    tmp = tmp_path_factory.mktemp("hello")
    pki = TestPki()
    cert, key = pki.write(tmp, "server", pki.server("capped.test", "open.test"))

    def context() -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    listener, per_host = context(), context()
    listener.sni_callback = lambda obj, _name, _ctx: setattr(obj, "context", per_host)
    cap = ClientHelloCap(listener, lambda host: host == "capped.test")
    assert cap.installed
    srv = _Server(listener)
    srv.cap = cap  # type: ignore[attr-defined]  # kept alive with the context
    yield srv
    srv.close()


def _version(port: int, name: str, *flags: str) -> str:
    """The protocol version openssl s_client negotiated with ``name`` as SNI ("(NONE)": no handshake)."""
    openssl = require_executable("openssl")
    out = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name, *flags],
        input=b"",
        capture_output=True,
        timeout=20,
    ).stdout.decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("New, "):
            return line.split(",")[1].strip()
    raise AssertionError(out)


def test_the_capped_name_gets_tls12_and_others_tls13(server: _Server) -> None:
    assert _version(server.port, "capped.test") == "TLSv1.2"
    assert _version(server.port, "CAPPED.test.") == "TLSv1.2"  # the same name however it is written
    assert _version(server.port, "open.test") == "TLSv1.3"
    assert _version(server.port, "unknown.test") == "TLSv1.3"


def test_a_tls13_only_client_is_refused_for_the_capped_name(server: _Server) -> None:
    assert _version(server.port, "capped.test", "-tls1_3") == "(NONE)"
    assert _version(server.port, "open.test", "-tls1_3") == "TLSv1.3"


def test_a_failing_decision_leaves_the_connection_uncapped(tmp_path: Path) -> None:
    pki = TestPki()
    cert, key = pki.write(tmp_path, "server", pki.server("x.test"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def broken(_host: str) -> bool:
        raise RuntimeError("no snapshot")

    cap = ClientHelloCap(ctx, broken)
    srv = _Server(ctx)
    try:
        assert _version(srv.port, "x.test") == "TLSv1.3"
    finally:
        srv.close()
        del cap


def test_the_callback_can_be_cleared_and_set_again(server: _Server) -> None:
    """enable(False) takes the callback off the context (no Python call per handshake while no hostname
    needs it); enable(True) puts it back."""
    cap: ClientHelloCap = server.cap  # type: ignore[attr-defined]
    try:
        cap.enable(False)
        assert not cap.active
        assert _version(server.port, "capped.test") == "TLSv1.3"
        cap.enable(True)
        assert cap.active
        assert _version(server.port, "capped.test") == "TLSv1.2"
    finally:
        cap.enable(True)


def test_visitor_tls_sets_the_callback_only_while_a_zone_turned_tls13_off() -> None:
    """The edge's listener context carries the ClientHello callback only while some route has tls_1_3
    off, following snapshot swaps at the next SNI callback."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from originlock.edge.visitor_tls import VisitorTls
    from originlock.testing.pki import make_route, make_snapshot

    pki = TestPki()
    route = make_route("a.test")
    snapshots = [make_snapshot(pki, route)]
    tls = VisitorTls(lambda: snapshots[-1], lambda: datetime.now(UTC))
    assert tls.tls_1_3_cap.installed and not tls.tls_1_3_cap.active
    obj = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    snapshots.append(make_snapshot(pki, replace(route, tls_1_3=False), generation=2))
    tls._on_sni(obj, "a.test", tls.context)
    assert tls.tls_1_3_cap.active
    snapshots.append(make_snapshot(pki, route, generation=3))
    tls._on_sni(obj, None, tls.context)  # even without a server name
    assert not tls.tls_1_3_cap.active
