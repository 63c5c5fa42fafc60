"""The hostname -> route table of a snapshot: a large shared base and a small overlay of changes.

Theory of operation. At 100k hostnames the route table is a 100k-entry dict. Every snapshot used to
get its own copy of it, and a copy is one C call that holds the interpreter lock for 2-9 ms: the
edge's event loop, waiting for that lock, stalled at every change however small. Here a snapshot's
table is a :class:`RouteTable`: the *base* (a dict that nobody mutates once a table shares it) plus an
*overlay* (the names changed since the base was made: a route, or ``None`` for a name removed).
:class:`RouteLayers`, the assembly's writable side, puts changes into the overlay while its base is
shared, so taking a snapshot after a change copies only the overlay: O(changes since the last fold).

When the overlay grows past :data:`FOLD_AT` names it is *folded*: a new base is built from the old one
and the overlay, a slice at a time with a pause between slices (the interpreter lock is let go, so
the event loop runs), and the overlay starts empty again. Snapshots that share the old base keep it.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Final, Generic, TypeVar

__all__ = ["FOLD_AT", "FOLD_SLICE", "RouteLayers", "RouteTable"]

#: Overlay size above which the next snapshot folds it into a new base (a lookup miss in the overlay
#: costs one more dict probe; a fold costs a pass over the base, spread in slices).
FOLD_AT: Final = 4096
#: Base entries copied per slice of a fold: well under a millisecond holding the interpreter lock.
FOLD_SLICE: Final = 5000

#: What a name maps to (a snapshot's ``Route``): these layers only store and look it up.
R = TypeVar("R")


def _no_pause() -> None:
    return None


class _BaseToken:
    """Held by every table over one base: while one lives, the base must stay intact."""

    __slots__ = ("__weakref__",)


class RouteTable(Mapping[str, R]):
    """An immutable hostname -> route mapping over a shared base and a private overlay.

    ``base`` must never be mutated after it is handed over; ``overlay`` maps a changed name to its route
    or to ``None`` (removed), and is owned by this table.
    """

    __slots__ = ("_len", "_token", "base", "overlay")

    def __init__(
        self,
        base: dict[str, R],
        overlay: dict[str, R | None] | None = None,
        length: int | None = None,
        token: object = None,
    ) -> None:
        self.base = base
        self._token = token
        self.overlay: dict[str, R | None] = overlay if overlay is not None else {}
        if length is None:
            length = len(base)
            for name, route in self.overlay.items():
                length += (route is not None) - (name in base)
        self._len = length

    def get(self, name: str, default: R | None = None) -> R | None:  # type: ignore[override]
        overlay = self.overlay
        if name in overlay:
            route = overlay[name]
            return default if route is None else route
        return self.base.get(name, default)

    def __getitem__(self, name: str) -> R:
        route = self.get(name)
        if route is None:
            raise KeyError(name)
        return route

    def __contains__(self, name: object) -> bool:
        overlay = self.overlay
        if name in overlay:
            return overlay[name] is not None
        return name in self.base

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        overlay = self.overlay
        if not overlay:
            yield from self.base
            return
        for name in self.base:
            if name not in overlay:
                yield name
        for name, route in overlay.items():
            if route is not None:
                yield name

    def __repr__(self) -> str:
        return f"RouteTable(routes={self._len}, overlay={len(self.overlay)})"


class RouteLayers(Generic[R]):
    """The writable route table of an assembly; :meth:`table` freezes its current state.

    While no table shares the base (the first fill, or right after a fold) writes go to the base itself;
    afterwards they go to the overlay.
    """

    __slots__ = ("_base", "_len", "_overlay", "_shared", "_token")

    def __init__(self) -> None:
        self._base: dict[str, R] = {}
        self._overlay: dict[str, R | None] = {}
        #: Whether a :class:`RouteTable` handed out holds ``_base``.
        self._shared = False
        self._len = 0
        #: Held by the tables over ``_base``: once none is left the base may be dismantled in place.
        self._token: weakref.ref[_BaseToken] | None = None

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"RouteLayers(routes={self._len}, overlay={len(self._overlay)}, shared={self._shared})"

    @property
    def overlay_size(self) -> int:
        return len(self._overlay)

    def get(self, name: str) -> R | None:
        overlay = self._overlay
        if name in overlay:
            return overlay[name]
        return self._base.get(name)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def keys_in(self, names: Mapping[str, object]) -> list[str]:
        """The names of ``names`` that have a route (C-level set work while the overlay is empty)."""
        if not self._overlay:
            return list(self._base.keys() & names.keys())
        return [name for name in names if self.get(name) is not None]

    def set(self, name: str, route: R) -> None:
        if not self._shared:
            base = self._base
            self._len += name not in base
            base[name] = route
            return
        self._len += self.get(name) is None
        self._overlay[name] = route

    def delete(self, name: str) -> None:
        if self.get(name) is None:
            return
        self._len -= 1
        if not self._shared:
            del self._base[name]
        elif name in self._base:
            self._overlay[name] = None
        else:
            del self._overlay[name]

    def update(self, routes: Mapping[str, R]) -> None:
        """Set many names (the first fill: one C-level ``dict.update`` while the base is not shared)."""
        if self._shared or self._overlay:
            for name, route in routes.items():
                self.set(name, route)
            return
        before = len(self._base)
        self._base.update(routes)
        self._len += len(self._base) - before

    def table(self, pause: Callable[[], None] = _no_pause) -> RouteTable[R]:
        """The current routes as an immutable table; folds the overlay first when it is over :data:`FOLD_AT`."""
        if len(self._overlay) > FOLD_AT:
            self.fold(pause)
        self._shared = True
        token = self._token() if self._token is not None else None
        if token is None:
            token = _BaseToken()
            self._token = weakref.ref(token)
        return RouteTable(self._base, dict(self._overlay), self._len, token)

    def fold(self, pause: Callable[[], None] = _no_pause) -> None:
        """Make a new base of the base and the overlay, :data:`FOLD_SLICE` entries at a time with ``pause()``
        between slices; the old base stays intact for the tables that share it."""
        overlay = self._overlay
        if self._shared:
            base: dict[str, R] = {}
            source = iter(self._base.items())
            while chunk := dict(islice(source, FOLD_SLICE)):
                base.update(chunk)
                pause()
        else:
            base = self._base
        for name, route in overlay.items():
            if route is None:
                base.pop(name, None)
            else:
                base[name] = route
        self._base, self._overlay, self._shared, self._token = base, {}, False, None

    def clear_slices(self, slice_size: int, pause: Callable[[], None]) -> None:
        """Drop the references held here, ``slice_size`` at a time (a replaced assembly's dismantling).

        A base some table still holds (a snapshot an old request kept) is left whole, freed with its last
        table: mutating it would change that snapshot."""
        in_use = self._token is not None and self._token() is not None
        overlay, base = self._overlay, self._base
        self._overlay, self._shared, self._token = {}, False, None
        while overlay:
            for _ in range(min(slice_size, len(overlay))):
                overlay.popitem()
            pause()
        self._len = 0 if in_use else len(base)
        while base and not in_use:
            for _ in range(min(slice_size, len(base))):
                base.popitem()
            self._len = len(base)
            pause()
        self._base, self._overlay, self._shared, self._len, self._token = {}, {}, False, 0, None
