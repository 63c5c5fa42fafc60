"""Nodes register themselves in the store, so an operator sees the fleet (``GET /client/v4/edge_nodes``).

Each node upserts its row (id, role, listening addresses, the snapshot generation its edge serves) every
:data:`HEARTBEAT_SECONDS`, with a status write (no generation bump: registering must not make every edge
recompile). A row not refreshed for :data:`DOWN_AFTER_SECONDS` reads as ``down``; rows of nodes gone for
a day are deleted by whichever node registers next.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select

from originlock.store import schema
from originlock.store.db import Store, from_iso, insert_or_conflict, to_iso

__all__ = ["DOWN_AFTER_SECONDS", "HEARTBEAT_SECONDS", "NodeInfo", "NodeRegistration", "list_nodes"]

log = logging.getLogger("originlock.fleet")

HEARTBEAT_SECONDS = 5.0
#: Three missed heartbeats.
DOWN_AFTER_SECONDS = 15.0
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class NodeInfo:
    id: str
    role: str
    address: dict[str, Any]
    generation: int
    started_at: datetime
    last_seen: datetime

    def as_json(self, now: datetime) -> dict[str, Any]:
        age = (now - self.last_seen).total_seconds()
        return {
            "id": self.id,
            "role": self.role,
            "address": self.address,
            "generation": self.generation,
            "started_at": to_iso(self.started_at),
            "last_seen": to_iso(self.last_seen),
            "status": "up" if age <= DOWN_AFTER_SECONDS else "down",
        }


def list_nodes(conn: Connection) -> list[NodeInfo]:
    table = schema.edge_nodes
    return [
        NodeInfo(r.id, r.role, json.loads(r.address), r.generation, from_iso(r.started_at), from_iso(r.last_seen))
        for r in conn.execute(select(table).order_by(table.c.id)).all()
    ]


class NodeRegistration:
    """This node's row, refreshed by :meth:`run` until cancelled."""

    def __init__(
        self, store: Store, node: str, role: str, address: dict[str, Any], generation: Callable[[], int]
    ) -> None:
        self._store = store
        self.node = node
        self.role = role
        self.address = address
        self._generation = generation
        self._started = datetime.now(UTC)

    def __repr__(self) -> str:
        return f"NodeRegistration(node={self.node!r}, role={self.role!r})"

    def beat(self) -> None:
        now = datetime.now(UTC)
        table = schema.edge_nodes
        with self._store.status_write() as conn:
            stmt = insert_or_conflict(conn, table).values(
                id=self.node,
                role=self.role,
                address=json.dumps(self.address),
                generation=self._generation(),
                started_at=to_iso(self._started),
                last_seen=to_iso(now),
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c.id],
                    set_={"generation": stmt.excluded.generation, "last_seen": stmt.excluded.last_seen},
                )
            )
            conn.execute(delete(table).where(table.c.last_seen < to_iso(now - FORGET_AFTER)))

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.beat)
            except Exception as exc:  # the store may be down; the next beat tries again
                log.debug("node registration failed: %s", type(exc).__name__)
            await asyncio.sleep(HEARTBEAT_SECONDS)
