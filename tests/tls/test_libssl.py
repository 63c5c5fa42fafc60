"""The libssl calls made through ctypes: the C objects are found and checked (a connection of another
context is refused), and a client session moves from one connection to the next in C, or through
Python's ``session`` attribute where the C path is unusable, with the same result: the new connection
resumes (or, for a session the server did not make resumable, does a full handshake)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from originlock.testing.memory_tls import MemoryEnd, handshake
from originlock.testing.pki import TestPki
from originlock.tls import direct
from originlock.tls.direct import DirectSSLContext
from originlock.tls.libssl import openssl

SNI = "origin.example.test"


def _connect(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> ssl.SSLObject:
    """A finished in-memory handshake; the client's TLS object (TLS 1.3 tickets read as well)."""
    client = MemoryEnd(client_ctx, server_side=False, server_hostname=SNI)
    server = MemoryEnd(server_ctx, server_side=True)
    handshake(client, server)
    server.obj.write(b"x")  # makes the server send its NewSessionTickets before data
    client.incoming.write(server.outgoing.read())
    assert client.obj.read(1) == b"x"
    return client.obj


@pytest.fixture(scope="module")
def server_ctx(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    tmp: Path = tmp_path_factory.mktemp("libssl")
    pki = TestPki()
    cert, key = pki.write(tmp, "server", pki.server(SNI))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def _client() -> DirectSSLContext:
    ctx = DirectSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_pointers_are_found_and_checked() -> None:
    lib = openssl()
    assert lib is not None  # this CPython's layout is the one tls/libssl.py reads
    a, b = _client(), _client()
    pointer_a, pointer_b = lib.ssl_ctx(a), lib.ssl_ctx(b)
    assert pointer_a and pointer_b and pointer_a != pointer_b
    obj = a.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=SNI)
    assert lib.ssl(obj, pointer_a)
    assert lib.ssl(obj, pointer_b) is None  # a connection of another context is not taken for one of b's


@pytest.mark.parametrize("path", ["C", "python"])
def test_a_session_is_resumed_through_either_path(
    path: str, server_ctx: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path == "python":
        monkeypatch.setattr(direct, "openssl", lambda: None)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = _client()
        ctx.maximum_version = version
        first = _connect(ctx, server_ctx)
        assert not first.session_reused
        ctx.offer_session(SNI, first)
        second = _connect(ctx, server_ctx)
        assert second.session_reused, (path, version)
        assert second.version() == first.version()


def test_a_connection_of_another_context_is_not_resumed(server_ctx: ssl.SSLContext) -> None:
    other, ctx = _client(), _client()
    first = _connect(other, server_ctx)
    ctx.offer_session(SNI, first)  # a caller mistake: the session belongs to `other`
    assert not _connect(ctx, server_ctx).session_reused


def test_the_c_path_links_each_connection_and_lends_its_session(
    server_ctx: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each client TLS object notes its context and checked ``SSL *``; a dial resumes from that note in C
    (the Python fallback is never called), and the session it borrows stays the source's: a TLS 1.3 source
    lends it to two connections, and each connection of a chain resumes from the one before, as the edge
    dials. (Against this in-memory TLS 1.2 server a resumed connection's session is not resumable again,
    with either path: nginx renews it, tests/origin/test_origin_session_offers.py.)"""
    lib = openssl()
    assert lib is not None

    def no_fallback(*_args: object) -> None:
        raise AssertionError("the Python session path was taken")

    monkeypatch.setattr(DirectSSLContext, "_resume", no_fallback)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = _client()
        ctx.maximum_version = version
        source = _connect(ctx, server_ctx)
        link = getattr(source, direct._LINK)
        assert link == (ctx, lib.ssl(source, lib.ssl_ctx(ctx) or 0))
        for _ in range(2 if version is ssl.TLSVersion.TLSv1_3 else 1):
            offer = ctx.offer_session(SNI, source)
            resumed = _connect(ctx, server_ctx)
            ctx.withdraw(offer)
            assert offer.taken and resumed.session_reused, version
            assert lib.get_session(link[1])  # the source still holds its session
        if version is ssl.TLSVersion.TLSv1_3:
            last = source
            for _ in range(3):
                offer = ctx.offer_session(SNI, last)
                last = _connect(ctx, server_ctx)
                ctx.withdraw(offer)
                assert last.session_reused
