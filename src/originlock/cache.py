"""The one bounded cache type of the request path.

Per-request work that depends only on a value a peer sent (a header name, a Host value, a ``Connection``
list, a visitor address) or on the snapshot in force (an origin peer per hostname) is cached, and every
such cache is a :class:`BoundedCache`: peers choose the values, so none may grow without limit, and one
eviction policy for all of them. Full means start over: no bookkeeping per hit (an LRU's reordering costs
on every request what a miss costs once), and a working set that fits, which is the case these caches are
for, refills at once. A cache of values derived from a snapshot is emptied when the snapshot changes (see
``pipeline/builtin/origin_select.py``), so nothing outlives the configuration it was made from.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["BoundedCache"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A dict of at most ``limit`` entries; emptied when a new entry would go past the limit."""

    __slots__ = ("_items", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a cache holds at least one entry")
        self.limit = limit
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> V:
        """Store ``value`` and return it."""
        items = self._items
        if len(items) >= self.limit:
            items.clear()
        items[key] = value
        return value

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
