"""What ``EdgeState`` keeps about requests and visitor connections: the counts behind /metrics and the set
of open connections that a graceful shutdown closes (idle ones first)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.http1 import Http1Connection
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.edge.state import EdgeState
from originlock.pipeline.context import RequestContext
from originlock.testing.pki import TestPki, make_route, make_snapshot


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def state() -> Iterator[EdgeState]:
    loop = asyncio.new_event_loop()
    try:
        snapshot = make_snapshot(TestPki(), make_route("a.test", zone="a.test"), make_route("b.test", zone="b.test"))
        yield EdgeState(loop, EdgeConfig(), MemorySnapshotSource(snapshot))
    finally:
        loop.close()


def _answered(state: EdgeState, host: str | None, status: int) -> None:
    snapshot = state.snapshot()
    ctx = RequestContext(ray_id="-", snapshot=snapshot, scheme="https", client_ip="", client_port=0, started=0.0)
    ctx.route = snapshot.routes[host] if host is not None else None
    ctx.status = status
    state.book.log(ctx, None)


def test_requests_are_counted_by_zone_and_status(state: EdgeState) -> None:
    assert state.request_counts == {}
    for host, status in [("a.test", 200), ("a.test", 200), ("a.test", 404), ("b.test", 200), (None, 400)]:
        _answered(state, host, status)
    counts = state.request_counts
    assert counts == {("a.test", 200): 2, ("a.test", 404): 1, ("b.test", 200): 1, ("", 400): 1}
    _answered(state, "a.test", 200)
    assert counts[("a.test", 200)] == 2  # a copy: the scrape's view does not change under it
    assert state.request_counts[("a.test", 200)] == 3


def test_close_idle_connections_leaves_busy_ones_open(state: EdgeState) -> None:
    idle, busy = Http1Connection(state, "http"), Http1Connection(state, "http")
    for conn in (idle, busy):
        conn.connection_made(_Transport())  # type: ignore[arg-type]
    assert state.visitors.open == {idle, busy}
    busy._busy = True  # as while a request is being answered
    state.visitors.close_idle()
    assert idle.closed and not busy.closed
    assert state.visitors.open == {busy}
    busy.finished(False)  # answered, not keep-alive: closed
    assert busy.closed and not state.visitors.open
