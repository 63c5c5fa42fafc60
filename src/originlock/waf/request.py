"""The evaluation input: a plain, frozen description of one downstream request.

The edge builds one ``RequestFields`` per request from what it parsed; the WAF never sees sockets
or the clock. Everything Cloudflare derives (URI forms, header and cookie maps, query arguments,
form body) is computed lazily from these few attributes by ``context.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .types import Value

__all__ = ["RequestFields"]

_EMPTY: Mapping[str, Value] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RequestFields:
    """One downstream request as the Rules language sees it."""

    method: str
    """Request method as received; ``http.request.method`` is this, uppercased."""
    host: str
    """Host (from the Host header or the absolute URI), without the port."""
    path: str
    """Path as received (still percent-encoded), e.g. ``/a%20b``."""
    query: str = ""
    """Query string without the ``?``; empty when there is none."""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    """Header (name, value) pairs in arrival order, names in original case."""
    ip: str = "0.0.0.0"
    """Visitor address (``ip.src``), after any trusted X-Forwarded-For processing by the edge."""
    scheme: str = "http"
    """``http`` or ``https``: the downstream scheme, used for ``http.request.full_uri``."""
    ssl: bool = False
    """Whether the visitor connection is TLS (``ssl``)."""
    http_version: str = "HTTP/1.1"
    """``HTTP/1.0``, ``HTTP/1.1``, ``HTTP/2`` or ``HTTP/3``."""
    body: bytes | None = None
    """Buffered request body (may be a prefix), or None when the body was not buffered."""
    body_size: int | None = None
    """Full body size when ``body`` is only a prefix; None means ``len(body)``."""
    timestamp: float | None = None
    """Arrival time in seconds since the epoch (injected; the WAF has no clock)."""
    extra: Mapping[str, Value] = field(default_factory=lambda: _EMPTY)
    """Values for any other field the edge knows (``cf.tls_version``, ``cf.edge.server_port``,
    ``cf.ray_id``, GeoIP from a user-supplied database, ...). They override computed values."""
