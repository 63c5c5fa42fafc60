"""Ray ids: Cloudflare's shape (16 hex digits, a dash, the colo), unique per request, also across the
counter's wrap-around."""

from __future__ import annotations

import asyncio
import re

from originlock.edge.config import EdgeConfig
from originlock.edge.server import EdgeState
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.testing.pki import TestPki, make_route, make_snapshot


def test_ray_ids_are_hex_unique_and_count_up() -> None:
    loop = asyncio.new_event_loop()
    try:
        pki = TestPki()
        state = EdgeState(loop, EdgeConfig(), MemorySnapshotSource(make_snapshot(pki, make_route("a.test"))))
        state._ray_counter = 0xFFFFFFF0  # near the wrap-around
        rays = [state.ray_id() for _ in range(40)]
    finally:
        loop.close()
    assert all(re.fullmatch(r"[0-9a-f]{16}-OLK", ray) for ray in rays), rays[:3]
    assert len(set(rays)) == len(rays)
    prefix = rays[0][:8]
    assert all(ray[:8] == prefix for ray in rays)  # per process
    counters = [int(ray[8:16], 16) for ray in rays]
    assert counters[:2] == [0xFFFFFFF1, 0xFFFFFFF2] and counters[15:17] == [0, 1]  # byte order, wrap
