"""``tls/server_wrap.py``: a listener context's server-side ``wrap_bio`` in one call, with the same objects.

Over an in-memory handshake: the object is an ``ssl.SSLObject`` whose C object is owned by it (the SNI
callback receives the ``SSLObject`` itself), with the C object's ``read``/``write``/``pending``, and TLS works
through it; client-side calls and calls with a server name or a session go to the class's ``wrap_bio``.
"""

from __future__ import annotations

import ssl
import sys
from types import FrameType
from typing import Any

import pytest

from originlock.edge.visitor_tls import VisitorTls
from originlock.testing.memory_tls import MemoryEnd, handshake
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.tls.direct import DirectSSLContext
from originlock.tls.memory import load_chain_from_memory
from originlock.tls.server_wrap import ServerWrap, install

HOST = "wrap.test"
#: SSLObject method -> the C object's method it forwards to.
FORWARDED = {
    "read": "read",
    "write": "write",
    "pending": "pending",
    "do_handshake": "do_handshake",
    "cipher": "cipher",
    "compression": "compression",
    "unwrap": "shutdown",
}


def _server(pki: TestPki) -> DirectSSLContext:
    leaf = pki.server(HOST)
    ctx = DirectSSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_chain_from_memory(ctx, leaf.cert_pem.encode(), leaf.key_pem)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def _client(pki: TestPki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=pki.origin_ca.cert_pem)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def test_a_server_side_object_is_the_usual_one_and_carries_tls() -> None:
    pki = TestPki()
    server_ctx = _server(pki)
    named: list[Any] = []
    server_ctx.sni_callback = lambda obj, name, ctx: named.append((obj, name)) and None
    install(server_ctx)
    assert isinstance(vars(server_ctx)["wrap_bio"], ServerWrap)
    server_end = MemoryEnd(server_ctx, server_side=True)  # wrap_bio(..., server_side=True, server_hostname=None)
    server, s_in, s_out = server_end.obj, server_end.incoming, server_end.outgoing
    assert type(server) is ssl.SSLObject
    assert server.server_side and server.context is server_ctx and server.server_hostname is None
    inner = server._sslobj  # type: ignore[attr-defined]
    assert inner.owner is server
    # What the event loop calls per connection goes straight to the C object (unwrap is its shutdown).
    for name, c_name in FORWARDED.items():
        method = vars(server)[name]
        assert type(method).__name__ == "builtin_function_or_method" and method.__self__ is inner
        assert method.__name__ == c_name
    assert "getpeercert" not in vars(server)  # its C form takes no binary_form= keyword
    client_end = MemoryEnd(_client(pki), server_side=False, server_hostname=HOST)
    client, c_in, c_out = client_end.obj, client_end.incoming, client_end.outgoing
    handshake(client_end, server_end)
    assert named == [(server, HOST)]  # the SNI callback is given the SSLObject, as before
    assert server.selected_alpn_protocol() == "http/1.1"
    client.write(b"ping")
    s_in.write(c_out.read())
    assert server.read(100) == b"ping" and server.pending() == 0
    server.write(b"pong")
    c_in.write(s_out.read())
    assert client.read(100) == b"pong"
    assert server.cipher() == client.cipher() and server.compression() is None
    # A graceful close both ways, as uvloop makes it: the server's close_notify, then the client's.
    with pytest.raises(ssl.SSLWantReadError):
        server.unwrap()
    c_in.write(s_out.read())
    client.unwrap()
    s_in.write(c_out.read())
    server.unwrap()


@pytest.mark.parametrize(
    "kwargs", [{"server_side": False, "server_hostname": HOST}, {"server_side": True, "server_hostname": HOST}]
)
def test_other_calls_go_to_the_class_wrap_bio(kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = DirectSSLContext(ssl.PROTOCOL_TLS_CLIENT if not kwargs["server_side"] else ssl.PROTOCOL_TLS_SERVER)
    seen: list[dict[str, Any]] = []
    original = DirectSSLContext.wrap_bio

    def recording(self: DirectSSLContext, *args: Any, **kw: Any) -> ssl.SSLObject:
        seen.append({"args": args, "kw": kw})
        return original(self, *args, **kw)

    monkeypatch.setattr(DirectSSLContext, "wrap_bio", recording)
    install(ctx)
    obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), **kwargs)
    assert isinstance(obj, ssl.SSLObject) and obj.server_side is kwargs["server_side"]
    assert len(seen) == 1


def test_the_visitor_listener_wraps_with_at_most_one_python_frame() -> None:
    # ssl.SSLContext's path ran four (our override, SSLContext.wrap_bio, _encode_hostname, SSLObject._create);
    # compiled, ServerWrap runs none, interpreted its __call__ is the one.
    pki = TestPki()
    snapshot = make_snapshot(pki, make_route(HOST))
    ctx = VisitorTls(lambda: snapshot, lambda: pki.now).context
    frames: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            frames.append(frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True, server_hostname=None)
    finally:
        sys.setprofile(None)
    assert frames in ([], ["ServerWrap.__call__"])
    assert type(obj) is ssl.SSLObject and obj.context is ctx
