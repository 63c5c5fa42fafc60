"""The request path's one bounded cache type: what peers choose can never make it grow past its limit."""

from __future__ import annotations

import pytest

from originlock.cache import BoundedCache
from originlock.proto.events import _LOWER, lower_name


def test_holds_at_most_its_limit_and_starts_over_when_full() -> None:
    cache = BoundedCache[int, str](3)
    for key in range(3):
        assert cache.put(key, str(key)) == str(key)
    assert len(cache) == 3 and cache.get(2) == "2"
    cache.put(3, "3")  # full: emptied first
    assert len(cache) == 1 and cache.get(0) is None and cache.get(3) == "3"
    cache.clear()
    assert len(cache) == 0


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BoundedCache[int, int](0)


def test_field_names_a_peer_invents_stay_bounded() -> None:
    for n in range(3 * _LOWER.limit):
        assert lower_name(b"X-Invented-%d" % n) == b"x-invented-%d" % n
    assert len(_LOWER) <= _LOWER.limit
