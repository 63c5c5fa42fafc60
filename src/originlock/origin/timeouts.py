"""The origin timeouts (spec §7), in a module of their own: ``origin/connector.py`` is compiled by mypyc,
and a compiled frozen dataclass cannot be unpickled (its ``__setstate__`` assigns the fields, which a frozen
class refuses), while the edge's configuration, which holds these, is pickled to its worker processes."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OriginTimeouts"]


@dataclass(frozen=True)
class OriginTimeouts:
    """Cloudflare's documented defaults (spec §7)."""

    #: 522 when no SYN+ACK arrives within this many seconds (Cloudflare: 19 s).
    connect: float = 19.0
    #: 525 when the TLS handshake does not finish in time (Cloudflare does not document one; nginx's
    #: proxy_connect_timeout covers it with 60 s; we use the connect timeout again).
    handshake: float = 19.0
    #: 524 when no response (or no further response data) arrives within this many seconds (Cloudflare: 120 s).
    read: float = 120.0
    #: 524 when the origin does not accept request bytes within this many seconds (Cloudflare: 30 s).
    write: float = 30.0

    def __post_init__(self) -> None:
        if min(self.connect, self.handshake, self.read, self.write) <= 0:
            raise ValueError("origin timeouts must be positive")
