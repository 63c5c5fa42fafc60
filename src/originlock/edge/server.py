"""The edge server: listeners, shared per-process state, the once-a-second tick, graceful shutdown.

``EdgeState`` is what every connection shares (snapshot source, origin pool, TLS contexts, access log).
``EdgeServer`` owns the listeners and the state's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from originlock.edge.access_log import AccessLog
from originlock.edge.config import EdgeConfig
from originlock.edge.downstream import DownstreamConnection
from originlock.edge.listeners import bind_listener
from originlock.edge.overload import (
    Admission,
    OverloadLog,
    ShedConnection,
    describe_overload,
    descriptors_exhausted,
    install_accept_error_filter,
    raise_open_files_limit,
    visitor_capacity,
)
from originlock.edge.snapshots import RefreshingSnapshotSource, SnapshotSource
from originlock.edge.visitor_tls import VisitorTls
from originlock.edge.websocket import WebSocketStats
from originlock.errors import DownstreamError
from originlock.origin.connector import Connector
from originlock.origin.peer import strict_pool_trust
from originlock.origin.pool import OriginPool
from originlock.origin.resolve import Resolver, getaddrinfo_lookup
from originlock.origin.tls import OriginTlsContexts
from originlock.pipeline.builtin.access_log import access_log_line
from originlock.pipeline.builtin.error_pages import error_response
from originlock.pipeline.context import RequestContext
from originlock.pipeline.hooks import WafHook
from originlock.proto.events import RequestReceived
from originlock.proto.http1 import DEFAULT_LIMITS
from originlock.proto.serialize import response_head
from originlock.snapshot.model import Snapshot

__all__ = ["EdgeServer", "EdgeState"]

#: Housekeeping period: idle expiry, snapshot swap check, access-log flush.
TICK_SECONDS: Final = 1.0
_HEX_PAIRS: Final = tuple(f"{i:02x}" for i in range(256))


def _fingerprints(snapshot: Snapshot) -> frozenset[str]:
    # Kept by the snapshot: walking 100k routes here, on the event loop, stalled requests at every swap.
    return snapshot.client_fingerprints


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
        self.origin_read_timeout = config.origin_timeouts.read
        self.contexts = OriginTlsContexts()
        resolver = Resolver(getaddrinfo_lookup(loop), time.monotonic)
        connector = Connector(loop, resolver, self.contexts, config.origin_timeouts, self.limits)
        #: WebSockets dial their dedicated origin connections through the pool's connector (edge/websocket.py).
        self.connector = connector
        self.websockets = WebSocketStats()
        #: Overload events (connections shed, accept() failures, origin queue timeouts), logged once per
        #: interval by the tick (edge/overload.py).
        self.overload = OverloadLog(time.monotonic)
        self.pool = OriginPool(
            connector,
            time.monotonic,
            max_idle_per_key=config.pool_max_idle_per_key,
            idle_timeout=config.pool_idle_timeout,
            max_per_origin=config.limits.max_origin_connections,
            queue_timeout=config.limits.origin_queue_timeout,
            on_queue_timeout=lambda: self.overload.count("origin"),
        )
        #: Visitor connections allowed at once (``--max-connections`` lowered to fit the open-files limit;
        #: re-read by the tick) and the accepted ones still in their TLS handshake.
        self.capacity = visitor_capacity(config.limits.max_connections)
        self.admitting: weakref.WeakSet[Admission] = weakref.WeakSet()
        self.access_log = AccessLog(config.access_log)
        #: Read per request: a plain attribute, where ``access_log.enabled`` is an interpreted property.
        self.logging = self.access_log.enabled
        #: Requests answered, by zone name, then status (``request_counts`` is the flat view for /metrics).
        self._requests: dict[str, dict[int, int]] = {}
        #: Open visitor connections (each knows whether it is busy with a request).
        self.connections: set[DownstreamConnection] = set()
        self.draining = False
        self._snapshot = source.current()
        #: Bound once: the source is interpreted code, and looking its method up builds an object per request.
        self._current = source.current
        # The starting trust counts as seen: a later dial under it (a request begun before a swap) must not
        # close the connections of a newer one.
        self.pool.adopt_trust(strict_pool_trust(self._snapshot.pki))
        self._ray_prefix = os.urandom(4).hex()
        self._ray_counter = int.from_bytes(os.urandom(4), "big")
        self._ray_suffix = f"-{self.settings.colo}"
        self._soon: list[Callable[[], None]] = []
        # Bound once: per batch, looking up ``call_soon`` on the loop and binding ``_send_all`` would each
        # build an object.
        self._call_soon = loop.call_soon
        self._send_all_bound = self._send_all

    def send_soon(self, send: Callable[[], None]) -> None:
        """Run ``send`` (a socket write) after every read of this event-loop iteration was handled.

        The callback-driven path (``edge/fastpath.py``) would otherwise write as soon as each read is
        parsed, interleaving reads and writes; grouping the writes wakes each peer once per burst rather
        than once per write (docs/performance.md, step 3).
        """
        soon = self._soon
        if not soon:
            self._call_soon(self._send_all_bound)
        soon.append(send)

    def _send_all(self) -> None:
        sends, self._soon = self._soon, []
        for send in sends:
            send()

    # -- called per request --------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current snapshot; notices swaps and retires what the new one no longer has."""
        snap = self._current()
        if snap is not self._snapshot:
            self._swapped(snap)
        return snap

    def _swapped(self, snap: Snapshot) -> None:
        old = self._snapshot
        self._snapshot = snap
        keep = _fingerprints(snap)
        if _fingerprints(old) - keep:
            self.pool.retire(keep)
            self.contexts.retire(keep)
        # A new origin CA or revocation set: connections verified under the old one are never checked out
        # again (their keys differ); close them now rather than when the next strict dial notices.
        trust = strict_pool_trust(snap.pki)
        if trust != strict_pool_trust(old.pki):
            self.pool.adopt_trust(trust)
            self.contexts.forget_sessions(lambda key: not key.trust or key.trust == trust)

    def ray_id(self) -> str:
        """A unique id per request: 8 random hex digits per process + 8 of a counter, then the colo."""
        self._ray_counter = counter = (self._ray_counter + 1) & 0xFFFFFFFF
        # Four lookups in a table of byte pairs and one string built from six pieces: one allocation,
        # where an f-string with a "{:08x}" spec parses the spec per call (≈ 3x slower) and hex() plus
        # slicing allocates three times (docs/performance.md, step 6).
        h = _HEX_PAIRS
        return (
            f"{self._ray_prefix}{h[counter >> 24]}{h[(counter >> 16) & 255]}"
            f"{h[(counter >> 8) & 255]}{h[counter & 255]}{self._ray_suffix}"
        )

    def log(self, ctx: RequestContext, request: RequestReceived | None) -> None:
        # Nested dicts rather than one keyed by (zone, status): no tuple to build, hash and compare per
        # request, and the zone name's hash is cached in the string.
        zone = ctx.route.zone_name if ctx.route is not None else ""
        by_status = self._requests.get(zone)
        if by_status is None:
            by_status = self._requests[zone] = {}
        status = ctx.status
        by_status[status] = by_status.get(status, 0) + 1
        if self.logging:
            self.access_log.write(access_log_line(ctx, request, time.monotonic(), time.time()))

    @property
    def request_counts(self) -> dict[tuple[str, int], int]:
        """Requests answered, by (zone name, status; "" for requests without a zone): a new dict, read by
        the metrics collector at scrape time, possibly from another thread while the loop counts."""
        # Copies made in C (list() of a dict's items) and no loop over a live dict: in the interpreted
        # build another thread can run between bytecodes, and a dict that grows meanwhile would fail
        # the iteration.
        return {
            (zone, status): count
            for zone, by_status in list(self._requests.items())
            for status, count in list(by_status.items())
        }

    # -- connections ---------------------------------------------------------------------------

    def accept(self, scheme: str) -> asyncio.Protocol:
        """The protocol for a newly accepted visitor connection: a 503-and-close one beyond the capacity."""
        if len(self.connections) + len(self.admitting) >= self.capacity:
            self.overload.count("shed")
            return ShedConnection()
        return Admission(lambda: DownstreamConnection(self, scheme), self.admitting)

    def reject(self, conn: DownstreamConnection, exc: DownstreamError) -> None:
        """Answer a request that could not be parsed (400/414/431) and close."""
        ctx = RequestContext(
            ray_id=self.ray_id(),
            snapshot=self._snapshot,
            scheme=conn.scheme,
            client_ip=conn.client_ip,
            client_port=conn.client_port,
            started=time.monotonic(),
            sni=conn.sni,
        )
        response = error_response(exc, ctx.ray_id, conn.sni or "")
        headers = [*response.headers, (b"Connection", b"close")]
        conn.write(response_head(response.status, headers) + response.body)
        conn.flush()
        ctx.status, ctx.bytes_sent = response.status, len(response.body)
        ctx.error_code, ctx.error_detail = exc.code, exc.message
        self.log(ctx, None)

    # -- housekeeping --------------------------------------------------------------------------

    def tick(self) -> None:
        self.snapshot()
        self.pool.expire()
        self.access_log.flush()
        self.capacity = visitor_capacity(self.config.limits.max_connections)
        if self.admitting and len(self.connections) + len(self.admitting) >= self.capacity:
            # The stdlib loop keeps the protocol of a failed handshake in a reference cycle (future ->
            # exception -> traceback -> frame -> future) until the cyclic GC runs, so it would go on counting;
            # at the limit, once a tick, collect rather than shed visitors for connections already gone.
            gc.collect()
        if descriptors_exhausted():
            self.overload.count("files")
        self.overload.flush(lambda kind, count: describe_overload(kind, count, self.config.limits, self.capacity))

    def close_idle_connections(self) -> None:
        for conn in list(self.connections):
            conn.close_if_idle()


class EdgeServer:
    """Listeners plus state for one process. Use ``await start()``, then ``await serve()`` until
    cancelled; ``serve`` shuts down gracefully when cancelled."""

    def __init__(self, config: EdgeConfig, source: SnapshotSource, *, waf: WafHook | None = None) -> None:
        self.config = config
        self.source = source
        self.waf = waf
        self.http_address: tuple[str, int] | None = None
        self.https_address: tuple[str, int] | None = None
        self._servers: list[asyncio.Server] = []
        self.visitor_tls: VisitorTls | None = None
        self._state: EdgeState | None = None

    @property
    def state(self) -> EdgeState:
        assert self._state is not None, "start() first"
        return self._state

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        raise_open_files_limit()
        reuse = self.config.workers > 1
        http_sock = https_sock = None
        if self.config.http is not None:
            http_sock = bind_listener(*self.config.http, reuse_port=reuse, backlog=self.config.limits.backlog)
            self.http_address = _bound(http_sock)
        if self.config.https is not None:
            https_sock = bind_listener(*self.config.https, reuse_port=reuse, backlog=self.config.limits.backlog)
            self.https_address = _bound(https_sock)
        state = self._state = EdgeState(
            loop,
            self.config,
            self.source,
            waf=self.waf,
            http_port=self.http_address[1] if self.http_address else None,
            https_port=self.https_address[1] if self.https_address else None,
        )
        install_accept_error_filter(loop, state.overload)
        for sock in (http_sock, https_sock):
            if sock is not None:
                sock.on_shed = lambda count: state.overload.count("accept", count)
        # ``backlog`` again: create_server calls listen() itself, with 100 unless told otherwise.
        backlog = self.config.limits.backlog
        if http_sock is not None:
            self._servers.append(
                await loop.create_server(lambda: state.accept("http"), sock=http_sock, backlog=backlog)
            )
        if https_sock is not None:
            tls = VisitorTls(state.snapshot, lambda: datetime.now(UTC), ticket_secret=self.config.ticket_secret)
            self.visitor_tls = tls
            self._servers.append(
                await loop.create_server(
                    lambda: state.accept("https"),
                    sock=https_sock,
                    backlog=backlog,
                    ssl=tls.context,
                    ssl_handshake_timeout=self.config.header_timeout,
                )
            )

    async def serve(self) -> None:
        """Housekeeping until cancelled, then a graceful shutdown."""
        state = self.state
        refresher: asyncio.Task[None] | None = None
        if isinstance(self.source, RefreshingSnapshotSource):
            refresher = asyncio.get_running_loop().create_task(self.source.run())
        try:
            while True:
                await asyncio.sleep(TICK_SECONDS)
                state.tick()
        finally:
            if refresher is not None:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await refresher
            await self.aclose()

    async def aclose(self) -> None:
        """Stop accepting, let in-flight requests finish (up to ``shutdown_grace``), close the rest."""
        state = self.state
        for server in self._servers:
            server.close()
        state.draining = True
        state.close_idle_connections()
        deadline = time.monotonic() + self.config.shutdown_grace
        while state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            state.close_idle_connections()
        for conn in list(state.connections):
            conn.close()
        state.pool.close()
        state.access_log.close()
        self._servers.clear()


def _bound(sock: socket.socket) -> tuple[str, int]:
    address = sock.getsockname()
    return str(address[0]), int(address[1])
