"""The origin connection pool: the thin async shell around :class:`~originlock.origin.pool_state.PoolState`.

State changes happen in the pure state object; this shell only dials (through the connector) and closes
what the state returns.

Strict trust changes: the trust element of a strict pool key names the origin CA and the revoked Origin
CA certificates (origin/peer.py), the same for every strict peer of a snapshot. A snapshot that revokes
a certificate therefore gives every strict peer a new key, and connections filed under the old ones are
never checked out by its requests. They are also closed (:meth:`OriginPool.adopt_trust`): when the edge
swaps in a snapshot with a new trust, and before any dial under a trust this pool has not seen, every key
with another strict trust is retired (idle connections now, busy ones when their in-flight request returns
them), so no connection to an origin whose certificate was revoked stays open until idle expiry. Only a
trust never seen before triggers it, so a late request of an older snapshot cannot retire the newer
connections' keys.

Connections per origin (``max_per_origin``, ``--max-origin-connections``): every connection open or being
dialled counts against its origin's address and port, whatever the rest of its key (SNI, client
certificate...), since that is what the origin's own limits see. A request that would dial beyond the
limit first closes an idle connection of the same address made under another key, if there is one; else
it waits (``queue_timeout``) for a connection of that address to come back idle or to close, and takes
the idle one or the freed slot; after the wait it fails with 503 (``EdgeOverloaded``). Slow visitors can
therefore pin at most that many connections to one origin (issue 10, item 9).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

from originlock.errors import EdgeOverloaded
from originlock.origin.connection import OriginConnection
from originlock.origin.connector import Connector
from originlock.origin.peer import OriginPeer, PoolKey
from originlock.origin.pool_state import PoolState, PoolStatistics

__all__ = ["OriginPool"]

#: Idle connections kept per pool key. Pingora's upstream_keepalive_pool_size is 128; performance.md
#: measured nginx's keepalive 32 churning at 50 concurrent clients, so we keep more.
MAX_IDLE_PER_KEY: Final = 256
#: Idle expiry: below nginx's keepalive_timeout (60-75 s) on the origin side, so the edge closes first.
IDLE_TIMEOUT: Final = 50.0


def _usable(conn: OriginConnection) -> bool:
    return conn.usable()


#: What checkout is given, per request: compiled, a Final name is a C static, where naming the function
#: itself is a lookup in the module's globals dict at each use.
_USABLE: Final[Callable[[OriginConnection], bool]] = _usable


class OriginPool:
    def __init__(
        self,
        connector: Connector,
        clock: Callable[[], float],
        *,
        max_idle_per_key: int = MAX_IDLE_PER_KEY,
        idle_timeout: float = IDLE_TIMEOUT,
        max_per_origin: int = 0,
        queue_timeout: float = 10.0,
        on_queue_timeout: Callable[[], None] | None = None,
    ) -> None:
        self._connector = connector
        self._clock = clock
        self._state: PoolState[PoolKey, OriginConnection] = PoolState(
            max_idle_per_key=max_idle_per_key, idle_timeout=idle_timeout
        )
        #: Strict trust identities dialled so far (one per origin CA and revocation set: a handful).
        self._trusts: set[str] = set()
        #: 0: no limit per origin address.
        self._max_per_origin = max_per_origin
        self._queue_timeout = queue_timeout
        self._on_queue_timeout = on_queue_timeout
        #: Connections open or being dialled, per origin (host, port).
        self._open: dict[tuple[str, int], int] = {}
        #: Requests waiting for room under ``max_per_origin``, per origin (host, port), oldest first.
        self._waiters: dict[tuple[str, int], deque[asyncio.Future[None]]] = {}

    def acquire_idle(self, peer: OriginPeer) -> OriginConnection | None:
        """An idle connection for ``peer`` (it is then busy), or None when the caller must dial."""
        key = peer.pool_key()
        conn, to_close = self._state.checkout(key, self._clock(), _USABLE)
        if to_close:
            self._close(to_close)
        if conn is not None:
            # An equal key (it came from this key's slot), but perhaps another object: the peer's when the
            # connection was dialled under an earlier snapshot. The same object as the checkout's makes the
            # release's slot lookup an identity check instead of hashing the 8-field key (≈ 600 instructions).
            conn.key = key
        return conn

    async def acquire(
        self, peer: OriginPeer, *, fresh: bool = False, idle_checked: bool = False
    ) -> tuple[OriginConnection, bool]:
        """A connection for ``peer`` and whether it was reused. ``fresh`` skips idle connections;
        ``idle_checked``: the caller's :meth:`acquire_idle` just found none, so only a wait for room under
        ``max_per_origin`` looks at them again.

        Raises:
            EdgeOverloaded: ``max_per_origin`` connections stayed busy for ``queue_timeout`` (503).
            EdgeError: from the dial (521-526, 530).
        """
        key = peer.pool_key()
        if not (fresh or idle_checked):
            conn = self.acquire_idle(peer)
            if conn is not None:
                return conn, True
        address = (key.host, key.port)
        limit = self._max_per_origin
        if limit and self._open.get(address, 0) >= limit:
            waited = await self._wait_for_room(peer, address, fresh)
            if waited is not None:
                return waited, True
        self._open[address] = self._open.get(address, 0) + 1
        try:
            self.adopt_trust(key.trust)  # before dialling: the dial may well fail (526, revoked)
            # The dial's steps in this coroutine rather than ``await self._connector.connect(peer)``: each
            # coroutine layer is resumed at every suspension of the dial (origin/connector.py, OriginDial).
            dial = self._connector.dial(peer)
            if dial.address is None:
                await dial.resolve()
            connecting = dial.start()
            try:
                await connecting
            except BaseException as exc:
                raise dial.failed(exc)  # noqa: B904 (the edge error's cause is set by failed())
            conn = dial.established()
        except BaseException:
            self._closed_one(address)
            raise
        conn.key = key
        self._state.opened(key)
        return conn, False

    async def _wait_for_room(self, peer: OriginPeer, address: tuple[str, int], fresh: bool) -> OriginConnection | None:
        """Wait until ``address`` is below the limit (None: the caller may dial) or an idle connection for
        ``peer`` came back (returned, busy)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._queue_timeout
        limit = self._max_per_origin
        while True:
            if not fresh:
                conn = self.acquire_idle(peer)
                if conn is not None:
                    return conn
            if self._open.get(address, 0) < limit:
                return None
            evicted = self._state.evict_idle(lambda key: (key.host, key.port) == address)
            if evicted is not None:
                self._close((evicted,))
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                if self._on_queue_timeout is not None:
                    self._on_queue_timeout()
                raise EdgeOverloaded(
                    f"{limit} connections to {address[0]}:{address[1]} are busy (--max-origin-connections); "
                    f"none became free within {self._queue_timeout:g} s"
                )
            waiter: asyncio.Future[None] = loop.create_future()
            queue = self._waiters.setdefault(address, deque())
            queue.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                if waiter in queue:
                    queue.remove(waiter)
                if not queue and self._waiters.get(address) is queue:
                    del self._waiters[address]

    def _wake(self, address: tuple[str, int]) -> None:
        """A connection of ``address`` came back idle or closed: let its oldest waiter look again."""
        queue = self._waiters.get(address)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _closed_one(self, address: tuple[str, int]) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)
        if self._waiters:
            self._wake(address)

    def _close(self, conns: Sequence[OriginConnection]) -> None:
        for conn in conns:
            conn.close()
            key = conn.key
            if key is not None:
                self._closed_one((key.host, key.port))

    def adopt_trust(self, trust: str) -> None:
        """``trust`` (a strict pool key's trust element) is current: the first time it is seen, close the
        connections of every other strict trust (idle ones now, busy ones when they are released). Called
        by the edge when a snapshot with a new trust is swapped in, and before each dial."""
        if trust and trust not in self._trusts:
            self._trusts.add(trust)
            self._close(self._state.retire(lambda other: not other.trust or other.trust == trust))

    def release(self, conn: OriginConnection, reusable: bool) -> None:
        """Give ``conn`` back after an exchange; it is closed unless ``reusable``."""
        key = conn.key
        assert key is not None
        to_close = self._state.checkin(key, conn, self._clock(), reusable)
        if to_close:
            self._close(to_close)
        elif self._waiters:  # kept idle: a request waiting for this origin may take (or evict) it
            self._wake((key.host, key.port))

    def retire(self, keep_fingerprints: frozenset[str]) -> None:
        """Close connections made with client certificates that are no longer in the snapshot."""
        self._close(self._state.retire(lambda key: not key.fingerprint or key.fingerprint in keep_fingerprints))

    def expire(self) -> None:
        self._close(self._state.expire(self._clock()))

    def close(self) -> None:
        self._close(self._state.drain())

    def statistics(self) -> PoolStatistics:
        return self._state.statistics()

    def open_per_origin(self) -> dict[tuple[str, int], int]:
        """Connections open or being dialled, by origin (host, port): a copy."""
        return dict(self._open)
