"""The edge server: listeners, the once-a-second tick (parked while idle), graceful shutdown.

``EdgeServer`` owns the listeners and the lifetime of the :class:`~originlock.edge.state.EdgeState` every
visitor connection shares. The tick parks while there is nothing to keep (``edge/idle.py``): an idle edge
process does not wake.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
from datetime import UTC, datetime
from typing import Final

from originlock.edge.admission import Acceptor
from originlock.edge.config import EdgeConfig
from originlock.edge.idle import PARK_MAX_SECONDS, IdleGate
from originlock.edge.listeners import bind_listener
from originlock.edge.overload import (
    describe_overload,
    descriptors_exhausted,
    install_accept_error_filter,
    raise_open_files_limit,
)
from originlock.edge.snapshots import RefreshingSnapshotSource, SnapshotSource
from originlock.edge.state import EdgeState
from originlock.edge.ticket_keys import ROTATION_SECONDS
from originlock.edge.visitor_tls import VisitorTls
from originlock.pipeline.hooks import WafHook

__all__ = ["EdgeServer"]

#: Housekeeping period: idle expiry, snapshot swap check, access-log flush.
TICK_SECONDS: Final = 1.0


def _tick(state: EdgeState) -> None:
    """Housekeeping: snapshot swap, idle origin connections, access-log flush, limits, overload log."""
    state.snapshot()
    state.pool.expire()
    state.book.access_log.flush()
    visitors = state.visitors
    visitors.recount()
    if descriptors_exhausted():
        state.overload.count("files")
    state.overload.flush(lambda kind, count: describe_overload(kind, count, state.config.limits, visitors.capacity))
    if visitors.admitting and visitors.full() and isinstance(state.loop, asyncio.BaseEventLoop):
        # The stdlib loop keeps the protocol of a failed handshake in a reference cycle (future ->
        # exception -> traceback -> frame -> future) until the cyclic GC runs, so it would go on counting;
        # at the limit, once a tick, collect rather than shed visitors for connections already gone. uvloop
        # drops it at once: there a full collection per tick at the limit would only stall the loop. Last,
        # so that the overload line above is not held up by it.
        gc.collect()


def _nothing_to_keep(state: EdgeState) -> bool:
    """Whether the next tick would find nothing to do (see ``edge/idle.py``): no visitor connection open
    or in its handshake, no origin connection (pooled, busy or being dialled), no overload count waiting
    for its log line. The access log was flushed by the tick just run, and only a connection writes to it."""
    visitors = state.visitors
    if visitors.open or visitors.admitting or state.websockets.active or state.overload.pending():
        return False
    pool = state.pool.statistics()
    return not (pool.idle or pool.busy or any(state.pool.open_per_origin().values()))


def _park_seconds(now: float) -> float:
    """Until just past the next ticket-key rotation instant (wall clock), at most PARK_MAX_SECONDS."""
    return min(PARK_MAX_SECONDS, ROTATION_SECONDS - now % ROTATION_SECONDS + 0.01)


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
        #: Parks the tick while the process has nothing to keep; an accept or an overload event wakes it.
        self.idle = IdleGate()

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
        state.overload.noticed = self.idle.wake
        for sock in (http_sock, https_sock):
            if sock is not None:
                sock.on_shed = lambda count: state.overload.count("accept", count)
        # ``backlog`` again: create_server calls listen() itself, with 100 unless told otherwise.
        backlog = self.config.limits.backlog
        if http_sock is not None:
            self._servers.append(
                await loop.create_server(Acceptor(state, "http", self.idle), sock=http_sock, backlog=backlog)
            )
        if https_sock is not None:
            tls = VisitorTls(state.snapshot, lambda: datetime.now(UTC), ticket_secret=self.config.ticket_secret)
            self.visitor_tls = tls
            self.idle.on_wake.append(tls.tickets.rotate)
            self._servers.append(
                await loop.create_server(
                    Acceptor(state, "https", self.idle),
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
                if _nothing_to_keep(state):
                    await self.idle.park(_park_seconds(time.time()))
                else:
                    await asyncio.sleep(TICK_SECONDS)
                _tick(state)
                if self.visitor_tls is not None:
                    self.visitor_tls.tick()
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
        visitors = state.visitors
        visitors.draining = True
        visitors.close_idle()
        deadline = time.monotonic() + self.config.shutdown_grace
        while visitors.open and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            visitors.close_idle()
        visitors.close_all()
        state.pool.close()
        state.book.access_log.close()
        self._servers.clear()


def _bound(sock: socket.socket) -> tuple[str, int]:
    address = sock.getsockname()
    return str(address[0]), int(address[1])
