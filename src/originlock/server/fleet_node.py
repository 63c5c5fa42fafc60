"""What every node of a fleet runs besides its role's work: the lease keeper and its registration.

``serve``, ``edge`` and ``api`` (``cli/serve.py``, ``cli/roles.py``) call :func:`start_fleet_tasks` once
they listen, and cancel the tasks at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from originlock.server.lease_keeper import LeaseKeeper
from originlock.server.registry import NodeRegistration
from originlock.server.snapshot_health import stats_of
from originlock.store.db import Store

__all__ = ["start_fleet_tasks", "stop_tasks"]


def start_fleet_tasks(
    store: Store, node: str, role: str, address: dict[str, Any], source: object | None
) -> list[asyncio.Task[None]]:
    stats = stats_of(source)

    def generation() -> int:
        current = stats()
        return current.generation if current is not None else 0

    registration = NodeRegistration(store, node, role, address, generation)
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(registration.run(), name="originlock-node-registration")]
    if store.backend == "postgresql":
        # A SQLite file is one machine's: no fleet whose failover short leases speed up, and on an idle node
        # the renewals were a write (and an fsync) every 2 s. Its leases keep their job periods' lifetimes.
        tasks.append(loop.create_task(LeaseKeeper().run(), name="originlock-lease-keeper"))
    return tasks


async def stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
