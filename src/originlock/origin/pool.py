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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

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
    ) -> None:
        self._connector = connector
        self._clock = clock
        self._state: PoolState[PoolKey, OriginConnection] = PoolState(
            max_idle_per_key=max_idle_per_key, idle_timeout=idle_timeout
        )
        #: Strict trust identities dialled so far (one per origin CA and revocation set: a handful).
        self._trusts: set[str] = set()

    def acquire_idle(self, peer: OriginPeer) -> OriginConnection | None:
        """An idle connection for ``peer`` (it is then busy), or None when the caller must dial."""
        conn, to_close = self._state.checkout(peer.pool_key(), self._clock(), _USABLE)
        if to_close:
            _close(to_close)
        return conn

    async def acquire(self, peer: OriginPeer, *, fresh: bool = False) -> tuple[OriginConnection, bool]:
        """A connection for ``peer`` and whether it was reused. ``fresh`` skips idle connections."""
        key = peer.pool_key()
        if not fresh:
            conn = self.acquire_idle(peer)
            if conn is not None:
                return conn, True
        self.adopt_trust(key.trust)  # before dialling: the dial may well fail (526, revoked)
        conn = await self._connector.connect(peer)
        conn.key = key
        self._state.opened(key)
        return conn, False

    def adopt_trust(self, trust: str) -> None:
        """``trust`` (a strict pool key's trust element) is current: the first time it is seen, close the
        connections of every other strict trust (idle ones now, busy ones when they are released). Called
        by the edge when a snapshot with a new trust is swapped in, and before each dial."""
        if trust and trust not in self._trusts:
            self._trusts.add(trust)
            _close(self._state.retire(lambda other: not other.trust or other.trust == trust))

    def release(self, conn: OriginConnection, reusable: bool) -> None:
        """Give ``conn`` back after an exchange; it is closed unless ``reusable``."""
        key = conn.key
        assert key is not None
        to_close = self._state.checkin(key, conn, self._clock(), reusable)
        if to_close:
            _close(to_close)

    def retire(self, keep_fingerprints: frozenset[str]) -> None:
        """Close connections made with client certificates that are no longer in the snapshot."""
        _close(self._state.retire(lambda key: not key.fingerprint or key.fingerprint in keep_fingerprints))

    def expire(self) -> None:
        _close(self._state.expire(self._clock()))

    def close(self) -> None:
        _close(self._state.drain())

    def statistics(self) -> PoolStatistics:
        return self._state.statistics()


def _close(conns: Sequence[OriginConnection]) -> None:
    for conn in conns:
        conn.close()
