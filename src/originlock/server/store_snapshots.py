"""The edge's snapshot source backed by the store: told what changed, it recompiles only that.

Theory of operation. The source keeps a :class:`~originlock.snapshot.assembly.SnapshotAssembly` (every
zone's compiled parts) and the generation it has applied. Changes reach it three ways, fastest first:

1. in-process: a write through this process's API calls :meth:`StoreSnapshotSource.notify` after its
   commit (``Store.committed_hooks``), on SQLite and PostgreSQL alike;
2. PostgreSQL ``NOTIFY``: writes through any node of the fleet, delivered by a
   :class:`~originlock.server.store_listener.ChangeListener` thread;
3. on a SQLite file, the kernel: an inotify watch of the database and its ``-wal`` file wakes the source
   when any process writes it (``store/commit_watch.py``), and ``PRAGMA data_version`` and the
   generation, read on the loop, say whether the change log must be read (``server/sqlite_follow.py``): a
   ``--workers`` process sees the API process's commits within milliseconds, and an idle node's source
   sleeps (where inotify is unavailable, ``data_version`` is read ten times a second instead);
4. the fallback poll: every ``poll_seconds`` the source reads the generation and the change log since
   its own (``store/changes.py``): what a lost notification or a listener reconnect missed. On a
   SQLite file the fallback is the ``data_version`` look alone (the log is read only when it moved).

Each change names its zones, so the source recompiles those zones (their hostnames, certificates and
rules: a few queries) and swaps in a new snapshot; a change it cannot scope, or a gap in the log, makes
it rebuild everything. Certificate expiry is a scheduled event: the source wakes at the next instant a
client certificate expires and recompiles the zones concerned, instead of rebuilding every 30 s.

Compiles run in a worker thread (the event loop keeps serving) against the source's own store handle,
whose connection pool is not the API's (``Store.companion``).

When the store cannot be reached the source keeps serving what it has, counts how stale it is, and
catches up when the store answers again. At start it may begin from the last-known-good copy on disk
(``server/last_known_good.py``) when the store is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from originlock.server.bootstrap import MASTER_KEY_ENV, Deployment
from originlock.server.last_known_good import LastKnownGood, SavedView
from originlock.server.snapshot_stats import RECENT_CHANGES, ChangeTrace, SourceStatistics
from originlock.server.sqlite_follow import Look, SqliteFollower
from originlock.snapshot.assembly import SnapshotAssembly
from originlock.snapshot.lifetime import Lifetime
from originlock.snapshot.model import Snapshot
from originlock.store.changes import Change, read_since
from originlock.store.commit_watch import sqlite_file
from originlock.store.compile import REFRESH_DEADLINE, compile_assembly, refresh_assembly
from originlock.store.db import Store
from originlock.store.deadline import SNAPSHOT_TIMEOUTS
from originlock.store.sealing import KeySealer, load_or_create_master_key

__all__ = ["StoreSnapshotSource", "local_snapshot_source", "open_store_snapshots"]

log = logging.getLogger("originlock.snapshots")

#: Fallback poll of the change log when notifications are delivered (PostgreSQL): catches a lost NOTIFY.
POLL_SECONDS = 2.0
#: On SQLite (``server/sqlite_follow.py``), with inotify, a ``data_version`` look this often anyway (a write
#: inotify could not see: one pragma).
SQLITE_POLL_SECONDS = 10.0
#: On SQLite, a failed refresh is tried again this soon (with inotify no timer would otherwise come sooner).
RETRY_SECONDS = 0.5
#: An in-memory SQLite store (no file to watch): the change log itself, this often.
MEMORY_POLL_SECONDS = 0.1
#: The last-known-good file is written at most this often (incrementally: the zones changed since).
SAVE_SECONDS = 1.0
#: More zones than this in one batch of changes: one whole rebuild is cheaper than many ``IN`` lists.
MAX_INCREMENTAL_ZONES = 2000
#: An assembly replaced by a whole rebuild is freed a slice of this many entries at a time, once the edge no
#: longer holds the snapshot taken from it (or after RETIRE_SECONDS, whoever holds it then).
RELEASE_SLICE = 2000
RETIRE_SECONDS = 30.0


@contextlib.contextmanager
def long_lived_objects() -> Iterator[None]:
    """Build a whole snapshot without the cyclic garbage collector, then move what exists to its permanent
    generation (``gc.freeze``).

    A 100k-hostname snapshot is a million objects that live until the next whole rebuild. Built with the
    collector on, it triggered hundreds of collections (40 % of the compile); left in the collected
    generations, every later full collection walked it, pausing whichever thread allocated (the event
    loop's requests) for tens of milliseconds. Frozen objects are still freed by reference counting when
    the snapshot is replaced; only a reference cycle among them would stay (none are built on purpose).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _let_the_loop_run() -> None:
    """Between two slices of a route-table fold (snapshot/routes.py), in the worker thread: gives the
    interpreter lock to the event loop, which would otherwise wait for the whole fold."""
    time.sleep(0.0002)


class StoreSnapshotSource:
    """See the module docstring.

    Args:
        store: the store handle compiles use (give it its own pool: ``store.companion(SNAPSHOT_TIMEOUTS)``).
        poll_seconds: the fallback poll period (default by backend).
        listen: start a ``LISTEN`` thread on PostgreSQL.
        last_known_good: where the node keeps its last-known-good copy: saved after changes (at most every
            :data:`SAVE_SECONDS`), and served at start when the store cannot be reached.
        saves_copy: ``False``: the copy is only read at start (a ``--workers`` process: the main process
            writes it).
    """

    def __init__(
        self,
        store: Store,
        *,
        poll_seconds: float | None = None,
        listen: bool = True,
        last_known_good: LastKnownGood | None = None,
        saves_copy: bool = True,
    ) -> None:
        self._store = store
        self._watch_path = sqlite_file(store)
        sqlite_poll = SQLITE_POLL_SECONDS if self._watch_path is not None else MEMORY_POLL_SECONDS
        self._poll = poll_seconds or (sqlite_poll if store.backend == "sqlite" else POLL_SECONDS)
        #: The listener reconnected: the next look reads the log whatever the watch says.
        self._poll_now = False
        #: The last refresh failed: the next look reads the log whatever ``data_version`` says.
        self._retry = False
        #: SQLite: the file's watch and what its looks found (while ``run`` runs).
        self._follower: SqliteFollower | None = None
        self._listen = listen and store.backend == "postgresql"
        #: ``Store.writer_id`` of the store whose hooks notify this source (``local_snapshot_source``): the
        #: listener skips those writes' NOTIFY, so that their refresh starts after the API's response.
        self.own_writer: str | None = None
        #: That store itself: on SQLite, the file's wake-up at its commits is left to its hooks in the same way
        #: (``Store.committed_generation``).
        self.own_store: Store | None = None
        self._lkg = last_known_good if saves_copy else None
        self._unsaved = False
        self._pending: list[tuple[Change, float]] = []
        self._recent: deque[ChangeTrace] = deque(maxlen=RECENT_CHANGES)
        self._timed = 0
        self._delay_total = self._last_delay = 0.0
        self._pending_lock = threading.Lock()
        #: Assemblies replaced by whole rebuilds, with a weak reference to the last snapshot taken from them.
        self._retired: deque[tuple[weakref.ref[Lifetime], SnapshotAssembly, float]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._assembly: SnapshotAssembly | None = None
        self._rebuilds = self._full = 0
        self._rebuild_total = self._last_rebuild = 0.0
        self._from_disk = False
        self._confirmed = time.time()
        self._applied: int
        self._snapshot: Snapshot
        try:
            self._full_rebuild_sync()
        except Exception as exc:
            with long_lived_objects():
                saved = last_known_good.load() if last_known_good is not None else None
            if saved is None:
                raise
            log.warning(
                "store unreachable at start (%s): serving last-known-good generation %s from disk, %.0f s old",
                type(exc).__name__,
                saved.generation,
                time.time() - saved.saved_at,
            )
            self._assembly = saved.assembly
            self._snapshot = saved.assembly.snapshot(saved.generation)
            self._applied = saved.generation
            self._from_disk = True
            self._confirmed = saved.saved_at
        else:
            log.info(
                "snapshot generation %s compiled from the store: %s zones, %s hostnames in %.2f s",
                self._applied,
                self._assembly.zone_count if self._assembly else 0,
                len(self._snapshot.routes),
                self._last_rebuild,
            )

    def __repr__(self) -> str:
        return f"StoreSnapshotSource(generation={self._applied})"

    def current(self) -> Snapshot:
        return self._snapshot

    @property
    def generation(self) -> int:
        """The last store generation this source has applied."""
        return self._applied

    def statistics(self) -> SourceStatistics:
        assembly = self._assembly
        return SourceStatistics(
            generation=self._applied,
            # The kernel reports every write to the file: none since a look that found the snapshot current
            # means it still is (an idle SQLite node is not "stale" for lack of wake-ups).
            confirmed_at=time.time() if self._follower is not None and self._follower.quiet else self._confirmed,
            from_disk=self._from_disk,
            rebuilds=self._rebuilds,
            full_rebuilds=self._full,
            rebuild_seconds_total=self._rebuild_total,
            last_rebuild_seconds=self._last_rebuild,
            zones=assembly.zone_count if assembly else 0,
            routes=len(self._snapshot.routes),
            changes_timed=self._timed,
            change_delay_seconds_total=self._delay_total,
            last_change_delay_seconds=self._last_delay,
            recent_changes=tuple(self._recent),
        )

    # --- signals (any thread) ---------------------------------------------------------------------

    def notify(self, change: Change) -> None:
        """A committed change (from a store hook or the listener thread); wakes the source."""
        with self._pending_lock:
            self._pending.append((change, time.time()))
        self._poke()

    def _notified(self, change: Change) -> None:
        """A NOTIFY from the listener thread; this process's own writes come through its hook instead."""
        if change.writer is None or change.writer != self.own_writer:
            self.notify(change)

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _own_generation(self) -> int:
        return self.own_store.committed_generation if self.own_store is not None else 0

    def _look(self, follower: SqliteFollower) -> bool:
        """A look at the SQLite file, on the loop: whether the change log must be read."""
        if self._retry or self._from_disk:
            return True
        look = follower.look(self._applied)
        if look is Look.CURRENT:
            self._confirmed = time.time()
        return look is Look.BEHIND

    def _recheck(self) -> None:
        """The listener reconnected: whatever was notified meanwhile must be read from the log."""
        self._poll_now = True
        self._poke()

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        from originlock.server.store_listener import ChangeListener

        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._wake.set()  # changes notified between the first compile and now are applied at once
        listener = None
        if self._listen:
            listener = ChangeListener(self._store.url, self._store.channel, self._notified, self._recheck)
            listener.start()
        last_poll = last_save = time.monotonic()
        saving: asyncio.Future[None] | None = None
        follower = self._follower = (
            SqliteFollower(self._watch_path, self._loop, self._wake_up, self._own_generation)
            if self._watch_path is not None
            else None
        )
        self._poll_now = True  # what other processes committed since the first compile
        try:
            while True:
                timeout = max(0.0, self._poll - (time.monotonic() - last_poll))
                if follower is not None:
                    timeout = follower.timeout(time.monotonic(), timeout)
                    if self._retry:
                        timeout = min(timeout, RETRY_SECONDS)  # a failed refresh: no write may come to wake us
                if self._unsaved and saving is None:
                    timeout = min(timeout, max(0.0, SAVE_SECONDS - (time.monotonic() - last_save)))
                if self._retired:
                    timeout = min(timeout, 0.5)  # until the edge lets go of a replaced snapshot
                expiry = self._assembly.next_expiry() if self._assembly is not None else None
                if expiry is not None:
                    timeout = min(timeout, max(0.0, (expiry - datetime.now(UTC)).total_seconds()))
                # A timer handle rather than wait_for's task per wait (this ran ten times a second on SQLite).
                timer = self._loop.call_later(timeout, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    timer.cancel()
                self._wake.clear()
                poll = self._poll_now
                if follower is None:
                    poll = poll or time.monotonic() - last_poll >= self._poll
                else:
                    touched = follower.take_touched()
                    now = time.monotonic()
                    if not poll and (follower.look_due(now, touched) or now - last_poll >= self._poll):
                        last_poll = now
                        poll = self._look(follower)
                        follower.schedule_recheck(touched)
                if poll:
                    last_poll = time.monotonic()
                    self._poll_now = False
                with self._pending_lock:
                    notified = bool(self._pending)
                due = expiry is not None and expiry <= datetime.now(UTC)
                if poll or notified or due or self._retired:
                    try:
                        await asyncio.to_thread(self._catch_up, poll)
                    except Exception as exc:  # the store may be unreachable: keep serving what we have
                        self._retry = True
                        if follower is not None:
                            follower.quiet = False
                        log.warning(
                            "snapshot refresh failed, serving generation %s: %s", self._applied, type(exc).__name__
                        )
                    else:
                        self._retry = False
                        if follower is not None:
                            follower.refreshed(self._applied, poll)
                if saving is not None and saving.done():
                    saving = None
                if self._unsaved and saving is None and time.monotonic() - last_save >= SAVE_SECONDS:
                    # The save runs beside the next refreshes (a whole copy at 100k hostnames takes a while):
                    # what it writes is taken here, between two refreshes.
                    last_save = time.monotonic()
                    saving = asyncio.ensure_future(asyncio.to_thread(self._save, self._saved_view()))
                    saving.add_done_callback(lambda _: self._wake.set() if self._wake is not None else None)
        finally:
            if listener is not None:
                listener.stop()
            if follower is not None:
                follower.close()
                self._follower = None
            if saving is not None and not saving.done():
                with contextlib.suppress(Exception):
                    await asyncio.shield(saving)
            if self._unsaved:
                # A node stopping within SAVE_SECONDS of its last change still leaves that change on disk: a
                # restart while the store is down must not serve an older configuration than it last served.
                self._save(self._saved_view())

    # --- the work (one worker thread at a time) -----------------------------------------------------

    def _take_pending(self) -> tuple[list[Change], float | None]:
        """The changes notified since the last call, one per generation (this process's hook and its
        NOTIFY both announce its own writes), and when the first of them arrived."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        unique = sorted({c.generation: c for c, _ in reversed(pending)}.values(), key=lambda c: c.generation)
        return unique, min((received for _, received in pending), default=None)

    def _catch_up(self, poll: bool) -> None:
        self._release_retired()
        started = time.time()
        taken, received = self._take_pending()
        changes = [c for c in taken if c.generation > self._applied]
        contiguous = all(c.generation == self._applied + 1 + i for i, c in enumerate(changes))
        if poll or not contiguous or self._from_disk:
            # The generation, then the log up to it: a writer commits both at once, so no transaction is
            # needed for the two to agree.
            with self._store.read(timeout=REFRESH_DEADLINE, consistent=False) as conn:
                _, logged = read_since(conn, self._applied)
            self._confirmed = time.time()
            if logged is None or self._from_disk or self._assembly is None:
                self._full_rebuild_sync()
                return
            # The log has no writer's clock: a change also notified keeps the notification's, for its trace.
            notified = {c.generation: c for c in taken}
            changes = [notified.get(c.generation, c) for c in logged]
        now = datetime.now(UTC)
        assert self._assembly is not None
        expiring = self._assembly.zones_expiring(now)
        pki_due = self._assembly.pki_expiry is not None and self._assembly.pki_expiry <= now
        if not changes and not expiring and not pki_due:
            return
        if any(c.everything for c in changes) or pki_due:
            self._full_rebuild_sync()
            return
        zones = set(expiring).union(*(c.zones for c in changes))
        if len(zones) > MAX_INCREMENTAL_ZONES:
            self._full_rebuild_sync()
            return
        target = max((c.generation for c in changes), default=self._applied)
        if not zones:
            self._applied = target  # writes no snapshot depends on (tokens, alerts...): nothing to rebuild
            return
        refresh_assembly(self._store, self._assembly, zones, now)
        compiled = time.time()
        snapshot = self._assembly.snapshot(target, _let_the_loop_run)
        self._install(snapshot, target, time.time() - started, full=False)
        if changes:
            self._trace(changes, len(zones), received if received is not None else started, started, compiled)

    def _trace(self, changes: list[Change], zones: int, received: float, started: float, compiled: float) -> None:
        installed = time.time()
        written = min((c.at for c in changes if c.at is not None), default=None)
        self._recent.append(
            ChangeTrace(max(c.generation for c in changes), zones, written, received, started, compiled, installed)
        )
        if written is not None:
            self._timed += 1
            self._last_delay = max(0.0, installed - written)
            self._delay_total += self._last_delay

    def _full_rebuild_sync(self) -> None:
        started = time.perf_counter()
        with long_lived_objects():
            generation, assembly = compile_assembly(self._store, datetime.now(UTC))
            snapshot = assembly.snapshot(generation)
        if self._assembly is not None:
            # Freed later, a slice at a time, rather than all at once by this assignment or, worse, by the
            # edge's event loop dropping the old snapshot's last reference (_release_retired).
            self._retired.append((weakref.ref(self._snapshot.lifetime), self._assembly, time.monotonic()))
        self._assembly = assembly
        self._install(snapshot, generation, time.perf_counter() - started, full=True)

    def _release_retired(self) -> None:
        """Dismantle replaced assemblies whose last snapshot the edge no longer holds: its drop then only
        freed a table of references, and the objects themselves go here, between pauses that let the event
        loop run."""
        while self._retired:
            snapshot, assembly, since = self._retired[0]
            if snapshot() is not None and time.monotonic() - since < RETIRE_SECONDS:
                return
            self._retired.popleft()
            assembly.dismantle(RELEASE_SLICE, lambda: time.sleep(0.001))

    def _install(self, snapshot: Snapshot, generation: int, seconds: float, *, full: bool) -> None:
        if self._from_disk:
            log.info(
                "store reachable: serving generation %s from the store (was %s from disk)", generation, self._applied
            )
        self._snapshot = snapshot
        self._applied = generation
        self._from_disk = False
        self._confirmed = time.time()
        self._rebuilds += 1
        self._full += full
        self._rebuild_total += seconds
        self._last_rebuild = seconds
        self._unsaved = self._lkg is not None

    def _saved_view(self) -> SavedView | None:
        """What the next save writes, taken while no refresh runs (the assembly changes under refreshes)."""
        assembly = self._assembly
        if self._lkg is None or assembly is None:
            return None
        self._unsaved = False
        return SavedView(self._applied, assembly.pki, assembly.pki_expiry, assembly.parts(), self._confirmed)

    def _save(self, view: SavedView | None) -> None:
        if self._lkg is None or view is None:
            return
        try:
            self._lkg.save(view)
        except Exception as exc:
            self._unsaved = True
            log.warning("could not save the last-known-good snapshot: %s", type(exc).__name__)


def open_store_snapshots(data_dir: str, store_url: str, fips: bool = False) -> StoreSnapshotSource:
    """A picklable factory body for ``--workers``: each worker opens its own store connection, and starts from
    the node's last-known-good copy (which the main process writes) when the store cannot be reached."""
    sealer = KeySealer(load_or_create_master_key(Path(data_dir) / "master.key", os.environ.get(MASTER_KEY_ENV)))
    store = Store(store_url, sealer, fips=fips, timeouts=SNAPSHOT_TIMEOUTS, migrate_schema=False)
    return StoreSnapshotSource(store, last_known_good=LastKnownGood(Path(data_dir), sealer), saves_copy=False)


def local_snapshot_source(deployment: Deployment) -> StoreSnapshotSource:
    """The source of a node's own edge: its own pool, and told at once of writes through this process."""
    lkg = LastKnownGood(deployment.data_dir, deployment.store.sealer)
    source = StoreSnapshotSource(deployment.store.companion(SNAPSHOT_TIMEOUTS), last_known_good=lkg)
    deployment.store.committed_hooks.append(source.notify)
    # Those writes' own NOTIFY (or, on SQLite, the file's wake-up at their commit) is skipped: the hook
    # delivers them, after the API response (api/gate.py).
    source.own_writer = deployment.store.writer_id
    source.own_store = deployment.store
    return source
