"""`originlock serve` started while its PostgreSQL store is unreachable: the edge serves the node's
last-known-good copy, the API answers 503 with a v4 error body, and the node starts as usual once the store
answers.

A `serve` node needs its store for the control plane (the schema's migration, the account, the admin token),
but its edge does not: what it served when it stopped is on disk (``server/last_known_good.py``). Without this,
a fleet node restarted during a store outage served nothing at all until the store came back. A SQLite store is
a file in the data directory: failing to open it is a problem to report, not an outage to ride out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from originlock.api.envelope import fail
from originlock.api.failures import RETRY_AFTER
from originlock.server.bootstrap import MASTER_KEY_ENV, Deployment, bootstrap
from originlock.server.disk_start import DiskFirstSource, load_for_start
from originlock.server.last_known_good import LastKnownGood
from originlock.server.snapshot_health import snapshot_json, stats_of
from originlock.server.store_snapshots import StoreSnapshotSource
from originlock.store.db import UNAVAILABLE_CODE, Store
from originlock.store.deadline import SNAPSHOT_TIMEOUTS
from originlock.store.errors import StoreUnavailable
from originlock.store.sealing import KeySealer, load_or_create_master_key

__all__ = ["ApiUntilReady", "OutageStart", "bootstrap_when_reachable", "outage_start"]

log = logging.getLogger("originlock")

#: How often the control plane's start is tried again while the store is unreachable.
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class OutageStart:
    """The edge's source while the store is unreachable, and what to say about it."""

    source: DiskFirstSource
    generation: int
    saved_at: float

    def banner(self, reason: str) -> str:
        return (
            f"store unreachable ({reason}): the edge serves its last-known-good copy, generation {self.generation}"
            f" saved {max(0.0, time.time() - self.saved_at):.0f} s ago; the API answers 503 until the store answers"
        )


def outage_start(data_dir: Path, store_url: str | None, exc: BaseException) -> OutageStart | None:
    """The node's copy to serve, when ``exc`` (bootstrap's) says a PostgreSQL store is unreachable and the data
    directory holds a copy that loads; otherwise None (the caller reports ``exc``)."""
    if store_url is None or not store_url.startswith("postgresql"):
        return None
    if not isinstance(exc, OperationalError | StoreUnavailable):
        return None
    try:
        master = load_or_create_master_key(data_dir / "master.key", os.environ.get(MASTER_KEY_ENV))
    except OSError:
        return None
    sealer = KeySealer(master)
    lkg = LastKnownGood(data_dir, sealer)
    saved = load_for_start(lkg) if lkg.path.exists() else None
    if saved is None:
        return None

    def connect() -> Store:
        return Store(store_url, sealer, timeouts=SNAPSHOT_TIMEOUTS, migrate_schema=False)

    def build(store: Store, lkg: LastKnownGood) -> StoreSnapshotSource:
        return StoreSnapshotSource(store, last_known_good=lkg)

    return OutageStart(DiskFirstSource(saved, lkg, connect, build), saved.generation, saved.saved_at)


async def bootstrap_when_reachable(
    data_dir: Path, store_url: str, fips: bool, stopped: asyncio.Future[Any]
) -> Deployment | None:
    """The deployment, once the store answers; None if ``stopped`` finishes first (the API server stopped)."""
    while not stopped.done():
        try:
            return await asyncio.to_thread(bootstrap, data_dir, store_url, fips=fips)
        except (OperationalError, StoreUnavailable) as exc:
            log.debug("store still unreachable: %s", type(exc).__name__)
        await asyncio.wait([stopped], timeout=RETRY_SECONDS)
    return None


class ApiUntilReady:
    """The API's ASGI application: ``503`` with a v4 error body (``code`` 10503, ``Retry-After``) until
    :meth:`ready` hands it the control plane, which answers everything from then on. ``/healthz`` answers 503
    meanwhile, as the control plane's does while its store is down; ``/healthz/snapshot`` answers what the
    edge serves, as it always does."""

    def __init__(self, source: object) -> None:
        self._app: Any = None
        #: ``GET /healthz/snapshot`` answers meanwhile what the edge serves (``from_disk``, its age).
        self._stats = stats_of(source)

    def __repr__(self) -> str:
        return f"ApiUntilReady(ready={self._app is not None})"

    def ready(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self._app
        if app is not None:
            await app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # lifespan is off; a WebSocket handshake left unanswered is refused by the server
        current = self._stats() if scope["path"] == "/healthz/snapshot" else None
        if current is not None:
            await JSONResponse({"serving": True, **snapshot_json(current)})(scope, receive, send)
            return
        reason = "the store is unreachable: this node serves its edge only; retry shortly"
        answer = fail(503, UNAVAILABLE_CODE, reason, headers={"retry-after": RETRY_AFTER})
        await answer(scope, receive, send)
