"""A visitor connection's admission (edge/admission.py): it counts as "in its handshake" from the accept until
its handshake completed or failed, exactly once either way, and then gets the protocol its ALPN asked for."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from originlock.edge.admission import Acceptor, Admission
from originlock.edge.config import EdgeConfig
from originlock.edge.http1 import Http1Connection
from originlock.edge.http2 import Http2Connection
from originlock.edge.idle import IdleGate
from originlock.edge.limits import EdgeLimits
from originlock.edge.loops import loop_factory
from originlock.edge.overload import ShedConnection
from originlock.edge.server import _tick
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.edge.state import EdgeState
from originlock.testing.pki import TestPki, make_route, make_snapshot


class _TlsObject:
    def __init__(self, alpn: str | None) -> None:
        self.alpn = alpn

    def selected_alpn_protocol(self) -> str | None:
        return self.alpn

    def version(self) -> str:
        return "TLSv1.3"


class _Transport:
    def __init__(self, alpn: str | None = None, tls: bool = True) -> None:
        self.protocol: asyncio.BaseProtocol | None = None
        self.written: list[bytes] = []
        self._ssl = _TlsObject(alpn) if tls else None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("127.0.0.1", 40000)
        return self._ssl if name == "ssl_object" else default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


@pytest.fixture()
def state() -> Iterator[EdgeState]:
    loop = asyncio.new_event_loop()
    try:
        config = EdgeConfig(limits=EdgeLimits(max_connections=3))
        yield EdgeState(loop, config, MemorySnapshotSource(make_snapshot(TestPki(), make_route("a.test"))))
    finally:
        loop.close()


def test_a_completed_handshake_counts_out_once_and_gets_http1(state: EdgeState) -> None:
    accept = Acceptor(state, "https", IdleGate())
    admission = accept()
    assert isinstance(admission, Admission)
    assert state.visitors.admitting == 1
    transport = _Transport("http/1.1")
    admission.connection_made(transport)  # type: ignore[arg-type]
    assert state.visitors.admitting == 0
    assert isinstance(transport.protocol, Http1Connection)
    assert transport.protocol in state.visitors.open
    del admission  # the event loop drops it after set_protocol: not counted out a second time
    gc.collect()
    assert state.visitors.admitting == 0


def test_alpn_h2_gets_http2_and_plain_http_gets_http1(state: EdgeState) -> None:
    h2 = _Transport("h2")
    Acceptor(state, "https", IdleGate())().connection_made(h2)  # type: ignore[arg-type]
    assert isinstance(h2.protocol, Http2Connection)
    plain = _Transport(tls=False)
    Acceptor(state, "http", IdleGate())().connection_made(plain)  # type: ignore[arg-type]
    assert isinstance(plain.protocol, Http1Connection)
    assert state.visitors.admitting == 0


def test_a_failed_handshake_counts_out_when_the_loop_drops_it(state: EdgeState) -> None:
    accept = Acceptor(state, "https", IdleGate())
    admissions = [accept() for _ in range(2)]
    assert state.visitors.admitting == 2
    admissions.pop()  # no connection_made: the handshake failed and the loop let the protocol go
    assert state.visitors.admitting == 1
    # The stdlib loop keeps a failed handshake's protocol in a reference cycle: it counts until collected.
    cycle: list[Any] = [admissions.pop()]
    cycle.append(cycle)
    del cycle
    assert state.visitors.admitting == 1
    gc.collect()
    assert state.visitors.admitting == 0


def test_handshakes_in_progress_take_capacity(state: EdgeState) -> None:
    accept = Acceptor(state, "https", IdleGate())
    held = [accept() for _ in range(3)]
    assert all(isinstance(protocol, Admission) for protocol in held)
    assert isinstance(accept(), ShedConnection)
    assert state.overload.totals["shed"] == 1
    held.pop()
    assert isinstance(accept(), Admission)  # the place of the one that ended is free again


def test_the_first_accept_after_a_quiet_spell_wakes_the_housekeeping(state: EdgeState) -> None:
    idle = IdleGate()
    woken: list[bool] = []
    idle.on_wake.append(lambda: woken.append(True))
    idle.parked = True
    Acceptor(state, "https", idle)()
    assert woken == [True] and not idle.parked


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_at_the_limit_the_tick_collects_failed_handshakes_only_on_the_stdlib_loop(
    loop_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stdlib loop leaves a failed handshake's protocol in a reference cycle, so at the limit the tick runs
    the cyclic collector; uvloop drops it at once, and a full collection per tick would only stall its loop. The
    overload line is written before the collection, which can take seconds on a large heap."""
    loop = loop_factory(loop_name)()
    try:
        config = EdgeConfig(limits=EdgeLimits(max_connections=3), loop=loop_name)
        state = EdgeState(loop, config, MemorySnapshotSource(make_snapshot(TestPki(), make_route("a.test"))))
        held = [Acceptor(state, "https", IdleGate())() for _ in range(4)]  # three places taken, one shed
        assert state.visitors.full() and state.overload.pending()
        happened: list[str] = []
        monkeypatch.setattr(gc, "collect", lambda *_: happened.append("collect") or 0)
        monkeypatch.setattr(state.overload, "flush", lambda *_: happened.append("flush"))
        _tick(state)
        assert happened == (["flush", "collect"] if loop_name == "asyncio" else ["flush"])
        del held
    finally:
        loop.close()
