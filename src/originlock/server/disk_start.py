"""A node that serves its last-known-good copy first, and only then opens the store (issue 15's cold start).

Theory of operation. A restarted ``originlock edge`` node compiled everything from the store before it
served: SQLAlchemy's import (~0.45 CPU-s with its PostgreSQL dialects), the connection, the compile of 100k
hostnames, although the copy it saved on disk (``server/last_known_good.py``) is what it served moments
before it stopped. Now the role loads that copy, which needs neither SQLAlchemy nor the store, and the edge
serves it. :class:`DiskFirstSource` is the edge's source meanwhile: its :meth:`~DiskFirstSource.run`, which
the edge starts once it listens, opens the store in a worker thread (the imports run there, beside the
event loop) and hands over to the store's :class:`~originlock.server.store_snapshots.StoreSnapshotSource`:

- the store answers: that source compiles from it, and the edge serves its snapshot from the next request
  on; the copy's objects are then freed a slice at a time once the edge lets go of them;
- the store is unreachable: that source takes the copy already in memory (``LastKnownGood.hand_over``, not
  a second load) and catches up when the store answers, as a node started without the store always did.

Until the hand-over the statistics say what is served: the copy's generation, ``from_disk``, and its age
(``confirmed_at`` is when the copy was last confirmed current). What a restarted node serves for the
moment of its compile is the configuration it served when it stopped: a change made while it was down
reaches it with that compile (about a second at 100k hostnames), as it reaches a node whose store fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from originlock.server.last_known_good import LastKnownGood, Saved
from originlock.server.snapshot_stats import SourceStatistics
from originlock.snapshot.model import Snapshot

if TYPE_CHECKING:
    from originlock.store.db import Store

__all__ = ["DiskFirstSource", "StoreSource", "load_for_start"]

log = logging.getLogger("originlock.snapshots")

#: The copy's objects are freed this many entries at a time once the edge no longer holds its snapshot (or
#: after RETIRE_SECONDS, whoever holds it then), as the store source frees a replaced assembly.
RELEASE_SLICE = 2000
RETIRE_SECONDS = 30.0
#: Between two attempts to build the store's source when building it failed for another reason than an
#: unreachable store (which it handles itself).
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


class StoreSource(Protocol):
    """What :class:`DiskFirstSource` hands over to (``StoreSnapshotSource``)."""

    @property
    def generation(self) -> int: ...

    def current(self) -> Snapshot: ...

    def statistics(self) -> SourceStatistics: ...

    async def run(self) -> None: ...


@contextlib.contextmanager
def _long_lived_objects() -> Iterator[None]:
    """Loaded without the cyclic collector, then frozen: a 100k-hostname copy is a million objects that live
    until the next whole rebuild (see ``long_lived_objects`` in server/store_snapshots.py, not imported here:
    that module imports the store layer, which is what this start defers)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def load_for_start(lkg: LastKnownGood) -> Saved | None:
    """The copy in ``lkg``'s file, or None (no file, another format, a file that does not load: the node
    then compiles from the store, as a new node does)."""
    try:
        with _long_lived_objects():
            return lkg.load()
    except Exception as exc:  # a damaged copy must not stop a node whose store answers
        log.warning("last-known-good copy %s not loaded (%s): compiling from the store", lkg.path, type(exc).__name__)
        return None


class DiskFirstSource:
    """See the module docstring.

    Args:
        saved: the loaded copy, served from now on.
        lkg: where it came from; the store's source keeps saving there.
        connect: opens the store (its imports included); run in a worker thread, once.
        build: the store's source for that store, given ``lkg``; run in a worker thread (retried when it
            raises: an unreachable store it handles itself, by serving the copy handed over).
    """

    def __init__(
        self,
        saved: Saved,
        lkg: LastKnownGood,
        connect: Callable[[], Store],
        build: Callable[[Store, LastKnownGood], StoreSource],
    ) -> None:
        self._saved: Saved | None = saved
        self._generation = saved.generation
        self._snapshot: Snapshot | None = saved.assembly.snapshot(saved.generation)
        self._routes = len(self._snapshot.routes)
        self._lkg = lkg
        self._connect = connect
        self._build = build
        self._inner: StoreSource | None = None
        #: The store, once opened (the role starts its health listener and registration then).
        self.connected: asyncio.Future[Store] | None = None
        log.info(
            "serving last-known-good generation %s from disk (%s hostnames, %.0f s old) while the store is opened",
            saved.generation,
            self._routes,
            max(0.0, time.time() - saved.saved_at),
        )

    def __repr__(self) -> str:
        return f"DiskFirstSource(generation={self.generation}, handed_over={self._inner is not None})"

    def current(self) -> Snapshot:
        inner = self._inner
        if inner is not None:
            return inner.current()
        snapshot = self._snapshot
        assert snapshot is not None  # dropped only once handed over
        return snapshot

    @property
    def handed_over(self) -> bool:
        """The store's source serves from now on (compiled from the store, or the copy while it is down)."""
        return self._inner is not None

    @property
    def generation(self) -> int:
        inner = self._inner
        return inner.generation if inner is not None else self._generation

    def statistics(self) -> SourceStatistics:
        inner = self._inner
        if inner is not None:
            return inner.statistics()
        saved = self._saved
        return SourceStatistics(
            generation=self._generation,
            confirmed_at=saved.saved_at if saved is not None else 0.0,
            from_disk=True,
            rebuilds=0,
            full_rebuilds=0,
            rebuild_seconds_total=0.0,
            last_rebuild_seconds=0.0,
            zones=saved.assembly.zone_count if saved is not None else 0,
            routes=self._routes,
        )

    def connected_future(self) -> asyncio.Future[Store]:
        """Resolved with the store once :meth:`run` has opened it (or with the reason it could not)."""
        if self.connected is None:
            self.connected = asyncio.get_running_loop().create_future()
        return self.connected

    async def run(self) -> None:
        connected = self.connected_future()
        try:
            store = await asyncio.to_thread(self._connect)
        except Exception as exc:
            if not connected.done():
                connected.set_exception(exc)
            raise
        connected.set_result(store)
        inner = await self._hand_over(store)
        retire: asyncio.Task[None] | None = None
        if not inner.statistics().from_disk:
            log.info(
                "store reachable: serving generation %s from the store (was %s from disk)",
                inner.generation,
                self._generation,
            )
            retire = asyncio.get_running_loop().create_task(self._retire())
        else:
            # The store's source serves the copy now, and frees it once it has caught up.
            self._saved = self._snapshot = None
        try:
            await inner.run()
        finally:
            if retire is not None:
                retire.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retire

    async def _hand_over(self, store: Store) -> StoreSource:
        attempt = 0
        while True:
            # The store's source loads the copy only when the store is unreachable: it gets this one.
            self._lkg.hand_over(self._saved)
            try:
                inner = await asyncio.to_thread(self._build, store, self._lkg)
            except Exception as exc:
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                attempt += 1
                log.warning(
                    "snapshot source not built (%s): serving the disk copy, again in %.1f s", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                continue
            finally:
                self._lkg.hand_over(None)  # never keep a reference the build did not take
            self._inner = inner
            return inner

    async def _retire(self) -> None:
        """Free the copy's objects once the edge no longer holds the snapshot taken from it, a slice at a
        time in a worker thread: dropped at once on the event loop, 100k routes held it for tens of ms."""
        saved, snapshot = self._saved, self._snapshot
        self._saved = self._snapshot = None
        if saved is None or snapshot is None:
            return
        held = weakref.ref(snapshot.lifetime)
        del snapshot
        since = time.monotonic()
        while held() is not None and time.monotonic() - since < RETIRE_SECONDS:
            await asyncio.sleep(0.5)
        await asyncio.to_thread(saved.assembly.dismantle, RELEASE_SLICE, lambda: time.sleep(0.001))
