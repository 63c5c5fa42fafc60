"""``GET /client/v4/edge_nodes`` (originlock extension): the fleet's nodes as they last registered.

Each: id, role (serve / edge / api), addresses, the snapshot generation it serves, when it started and was
last seen, and ``status`` (``down`` after three missed heartbeats). Needs a token allowed to read zones.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from originlock.api.deps import Caller, StoreDep, allow
from originlock.api.envelope import ok, result_info
from originlock.server.registry import list_nodes

router = APIRouter()


@router.get("/edge_nodes")
def list_edge_nodes(store: StoreDep, token: Caller) -> JSONResponse:
    allow(token, "zone:read")
    with store.read() as conn:
        nodes = list_nodes(conn)
    now = datetime.now(UTC)
    items = [n.as_json(now) for n in nodes]
    return ok(items, result_info(1, max(len(items), 1), len(items), len(items)))
