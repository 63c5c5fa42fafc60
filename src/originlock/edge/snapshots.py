"""Where the edge gets its configuration: a :class:`SnapshotSource`.

The edge calls :meth:`SnapshotSource.current` once per request (it must be cheap: return a reference)
and keeps that snapshot for the whole request, so swapping the source's snapshot never affects
in-flight requests. When the returned object changes, the edge retires origin connections and TLS
contexts of client certificates that are no longer present.

A source that needs a background task (e.g. polling the store generation) also implements
:class:`RefreshingSnapshotSource`: the edge runs ``await source.run()`` for its lifetime and cancels it
at shutdown. With ``--workers N`` every process builds its own source by calling a
:data:`SnapshotFactory` (which must be picklable: a module-level function or ``functools.partial``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from originlock.snapshot.model import Snapshot

__all__ = ["MemorySnapshotSource", "RefreshingSnapshotSource", "SnapshotFactory", "SnapshotSource"]


@runtime_checkable
class SnapshotSource(Protocol):
    def current(self) -> Snapshot:
        """The snapshot new requests should use."""
        ...


@runtime_checkable
class RefreshingSnapshotSource(SnapshotSource, Protocol):
    async def run(self) -> None:
        """Keep ``current()`` up to date until cancelled."""
        ...


SnapshotFactory = Callable[[], SnapshotSource]


class MemorySnapshotSource:
    """A source holding one snapshot in memory; :meth:`swap` replaces it atomically (tests, embedding)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def current(self) -> Snapshot:
        return self._snapshot

    def swap(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def __repr__(self) -> str:
        return f"MemorySnapshotSource(generation={self._snapshot.generation})"
