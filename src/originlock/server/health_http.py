"""The health listener of an ``originlock edge`` node: ``/healthz``, ``/healthz/snapshot`` and ``/metrics``.

Why not the API's web stack: an edge node serves three read-only documents to a load balancer and a
Prometheus scraper. Importing FastAPI, Starlette, pydantic and uvicorn for them was about a third of the
node's cold start (1.4-1.5 CPU-seconds at 100k hostnames, against a 2-second budget, issue 15). This is a
plain asyncio server: one request per connection (``Connection: close``), ``GET`` and ``HEAD`` only,
request heads bounded in size and time. The documents are the ones the API's routes give
(``server/snapshot_health.py``), so monitoring reads a ``serve`` node and an ``edge`` node alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from originlock.server import metrics
from originlock.server.snapshot_health import snapshot_document

__all__ = ["HealthDocument", "HealthServer", "edge_health_routes"]

#: A request head larger than this, or slower than HEAD_SECONDS, is dropped (a health check is a few lines).
MAX_HEAD = 8192
HEAD_SECONDS = 5.0

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


@dataclass(frozen=True)
class HealthDocument:
    status: int
    content_type: str
    body: bytes


Route = Callable[[], HealthDocument]

_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"


def edge_health_routes(registry: CollectorRegistry, source: object) -> dict[str, Route]:
    """The edge role's documents: ``registry`` is rendered at ``/metrics`` (the snapshot collector is
    registered in it here), ``source``'s statistics at ``/healthz/snapshot``."""
    snapshot = snapshot_document(registry, source)

    def health() -> HealthDocument:
        return HealthDocument(200, _TEXT, b"ok\n")  # the edge listens and serves a snapshot

    def snapshot_health() -> HealthDocument:
        status, body = snapshot()
        return HealthDocument(status, _JSON, json.dumps(body, separators=(",", ":")).encode())

    def prometheus() -> HealthDocument:
        return HealthDocument(200, metrics.CONTENT_TYPE, metrics.render(registry))

    return {"/healthz": health, "/healthz/snapshot": snapshot_health, "/metrics": prometheus}


class HealthServer:
    """Serves ``routes`` (path -> document) on one listening socket until :meth:`close`."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self._routes = routes
        self._server: asyncio.Server | None = None

    def __repr__(self) -> str:
        return f"HealthServer(paths={sorted(self._routes)})"

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, host, port, limit=MAX_HEAD)
        address: tuple[str, int] = self._server.sockets[0].getsockname()[:2]
        return address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_SECONDS)
            writer.write(self._answer(head))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, head: bytes) -> bytes:
        method, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
        target = rest.split(b" ", 1)[0].decode("latin-1")
        path = target.split("?", 1)[0]
        if not target.startswith("/"):
            document = HealthDocument(400, _TEXT, b"bad request\n")
        elif method not in (b"GET", b"HEAD"):
            document = HealthDocument(405, _TEXT, b"method not allowed\n")
        elif (route := self._routes.get(path)) is None:
            document = HealthDocument(404, _TEXT, b"not found\n")
        else:
            document = route()
        status = document.status
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"content-type: {document.content_type}",
            f"content-length: {len(document.body)}",
            "connection: close",
        ]
        if status == 405:
            lines.append("allow: GET, HEAD")
        response = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return response if method == b"HEAD" else response + document.body
