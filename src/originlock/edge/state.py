"""What every visitor connection of one edge process shares, each part with its own job.

- the snapshot in force, and what a new one retires (origin connections, TLS contexts, sessions);
- the origin side: resolver, connector, TLS contexts and the pool;
- :class:`~originlock.edge.visitors.Visitors` (open connections, capacity, draining);
- :class:`~originlock.edge.request_book.RequestBook` (counts and access log: LOG);
- :class:`~originlock.edge.ray_ids.RayIds`, :class:`~originlock.edge.write_batch.WriteBatch`, the timer wheel
  of the visitors' deadlines;
- the counters the tick and /metrics read (overload events, WebSockets).

The listeners, the tick and shutdown are ``edge/server.py``'s; the request's phases ``edge/exchange.py``'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from originlock.edge.access_log import AccessLog
from originlock.edge.config import EdgeConfig
from originlock.edge.overload import OverloadLog
from originlock.edge.ray_ids import RayIds
from originlock.edge.request_book import RequestBook
from originlock.edge.snapshots import SnapshotSource
from originlock.edge.visitors import Visitors
from originlock.edge.write_batch import WriteBatch
from originlock.origin.connector import Connector
from originlock.origin.deadline import TimerWheel
from originlock.origin.peer import strict_pool_trust
from originlock.origin.pool import OriginPool
from originlock.origin.resolve import Resolver, getaddrinfo_lookup
from originlock.origin.tls import OriginTlsContexts
from originlock.pipeline.hooks import WafHook
from originlock.proto.http1 import DEFAULT_LIMITS
from originlock.snapshot.model import Snapshot

__all__ = ["EdgeState", "WebSocketStats"]


class WebSocketStats:
    """Counts for ``/metrics``: relays open now, and 101s relayed since start."""

    __slots__ = ("active", "upgrades")

    def __init__(self) -> None:
        self.active = 0
        self.upgrades = 0


def certificates_gone(old: Snapshot, new: Snapshot) -> bool:
    """Whether ``old`` may present a client certificate that ``new`` no longer has.

    The sets are kept by the snapshots (walking 100k routes here, on the event loop, stalled requests at
    every swap), and a snapshot reuses its predecessor's set while no certificate changed: the identity
    check skips comparing 10k fingerprints (~0.2 ms on the loop) at nearly every swap.
    """
    gone, kept = old.client_fingerprints, new.client_fingerprints
    return gone is not kept and not gone <= kept


class EdgeState:
    """Per-process state shared by all visitor connections."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: EdgeConfig,
        source: SnapshotSource,
        *,
        waf: WafHook | None = None,
        http_port: int | None = None,
        https_port: int | None = None,
    ) -> None:
        self.loop = loop
        self.config = config
        self.source = source
        self.waf = waf
        self.limits = DEFAULT_LIMITS
        self.settings = config.pipeline_settings(http_port, https_port)
        # Read per request: plain floats here rather than two attribute lookups on the (interpreted)
        # frozen config each time.
        self.idle_timeout = config.idle_timeout
        self.header_timeout = config.header_timeout
        #: The visitor connections' idle and header deadlines, behind one loop timer.
        self.timers = TimerWheel(loop)
        self.origin_read_timeout = config.origin_timeouts.read
        self.contexts = OriginTlsContexts()
        resolver = Resolver(getaddrinfo_lookup(loop), time.monotonic)
        #: WebSockets dial their dedicated origin connections through the pool's connector (edge/websocket.py).
        self.connector = Connector(
            loop, resolver, self.contexts, config.origin_timeouts, self.limits, timers=self.timers
        )
        self.websockets = WebSocketStats()
        #: Overload events (connections shed, accept() failures, origin queue timeouts), logged once per
        #: interval by the tick (edge/overload.py).
        self.overload = OverloadLog(time.monotonic)
        self.pool = OriginPool(
            self.connector,
            time.monotonic,
            max_idle_per_key=config.pool_max_idle_per_key,
            idle_timeout=config.pool_idle_timeout,
            max_per_origin=config.limits.max_origin_connections,
            queue_timeout=config.limits.origin_queue_timeout,
            on_queue_timeout=lambda: self.overload.count("origin"),
        )
        self.visitors = Visitors(config.limits.max_connections)
        self.book = RequestBook(AccessLog(config.access_log))
        self.ray_ids = RayIds(self.settings.colo)
        #: The socket writes grouped per event-loop iteration: ``batch.add`` from compiled code is a native
        #: call, where ``send_soon`` (for callers that take a callable) goes through the generic call.
        self.batch = batch = WriteBatch(loop)
        #: Queue a socket write for the end of this event-loop iteration (:class:`WriteBatch`).
        self.send_soon: Callable[[Callable[[], None]], None] = batch.add
        self._snapshot = source.current()
        #: Bound once: the source is interpreted code, and looking its method up builds an object per request.
        self._current = source.current
        # The starting trust counts as seen: a later dial under it (a request begun before a swap) must not
        # close the connections of a newer one.
        self.pool.adopt_trust(strict_pool_trust(self._snapshot.pki))

    def snapshot(self) -> Snapshot:
        """The current snapshot; notices swaps and retires what the new one no longer has."""
        snap = self._current()
        if snap is not self._snapshot:
            self._swapped(snap)
        return snap

    def _swapped(self, snap: Snapshot) -> None:
        old = self._snapshot
        self._snapshot = snap
        if certificates_gone(old, snap):
            keep = snap.client_fingerprints
            self.pool.retire(keep)
            self.contexts.retire(keep)
        if snap.pki is old.pki:
            return
        # A new origin CA or revocation set: connections verified under the old one are never checked out
        # again (their keys differ); close them now rather than when the next strict dial notices.
        trust = strict_pool_trust(snap.pki)
        if trust != strict_pool_trust(old.pki):
            self.pool.adopt_trust(trust)
            self.contexts.forget_sessions(lambda key: not key.trust or key.trust == trust)

    @property
    def request_counts(self) -> dict[tuple[str, int], int]:
        """Requests answered, by (zone name, status): see :class:`RequestBook`."""
        return self.book.request_counts
