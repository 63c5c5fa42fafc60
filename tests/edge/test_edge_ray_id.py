"""Ray ids: Cloudflare's shape (16 hex digits, a dash, the colo), unique per request, also across the
counter's wrap-around."""

from __future__ import annotations

import re

from originlock.edge.ray_ids import RayIds


def test_ray_ids_are_hex_unique_and_count_up() -> None:
    ray_ids = RayIds("OLK")
    ray_ids._counter = 0xFFFFFFF0  # near the wrap-around
    rays = [ray_ids.next() for _ in range(40)]
    assert all(re.fullmatch(r"[0-9a-f]{16}-OLK", ray) for ray in rays), rays[:3]
    assert len(set(rays)) == len(rays)
    prefix = rays[0][:8]
    assert all(ray[:8] == prefix for ray in rays)  # per process
    counters = [int(ray[8:16], 16) for ray in rays]
    assert counters[:2] == [0xFFFFFFF1, 0xFFFFFFF2] and counters[15:17] == [0, 1]  # byte order, wrap


def test_ray_ids_say_whether_they_need_json_escaping() -> None:
    assert RayIds("OLK").json_plain
    assert not RayIds('a"b').json_plain and not RayIds("é").json_plain and not RayIds("\\").json_plain


def test_ray_ids_are_the_counter_in_hex_across_every_kind_of_step() -> None:
    """An id is the process's prefix, the counter as 8 hex digits and the colo: also where the digits kept
    rendered change (every 256 ids, at the wrap-around) and after the counter was set."""
    ray_ids = RayIds("OLK")
    prefix = ray_ids._prefix

    def expected(counter: int) -> str:
        return f"{prefix}{counter:08x}-OLK"

    for start in (0xFFFFFFF0 - 300, 0x0000FF00 - 2, 0x00FFFFFF - 600, 0x12345678):
        ray_ids._counter = start
        for step in range(1, 700):
            assert ray_ids.next() == expected((start + step) & 0xFFFFFFFF)
    ray_ids._counter = 0x000001FE  # set back, within a block of 256 already rendered above
    assert [ray_ids.next() for _ in range(3)] == [expected(0x1FF), expected(0x200), expected(0x201)]
