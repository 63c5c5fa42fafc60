"""PostgreSQL ``LISTEN`` for store changes, on a connection and a thread of its own.

The thread holds one autocommit connection, listens on the store's channel (``store/changes.py``) and
hands every notification's :class:`~originlock.store.changes.Change` to a callback, within a
millisecond of the writer's commit. When the connection fails it reconnects with a short backoff and
calls ``on_reconnect``, because notifications sent while it was away are lost: the snapshot source then
reads the change log. A hanging network is not detected here (the source's fallback poll is), only a
failing one: TCP keepalives and the periodic wake-up keep the thread responsive to :meth:`stop`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from originlock.store.changes import Change, parse_payload

__all__ = ["ChangeListener", "libpq_url"]

log = logging.getLogger("originlock.snapshots")

#: How long one wait for notifications lasts before the thread checks whether it should stop.
WAKE_SECONDS = 1.0
#: Pause between reconnection attempts.
RECONNECT_SECONDS = 0.5


def libpq_url(store_url: str) -> str:
    """The store URL as libpq takes it: no SQLAlchemy driver suffix, no ``schema=`` (not a libpq key)."""
    parts = urlsplit(store_url)
    query = {k: v for k, v in parse_qsl(parts.query) if k != "schema"}
    scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class ChangeListener:
    def __init__(
        self,
        store_url: str,
        channel: str,
        on_change: Callable[[Change], None],
        on_reconnect: Callable[[], None],
    ) -> None:
        self._url = libpq_url(store_url)
        self._channel = channel
        self._on_change = on_change
        self._on_reconnect = on_reconnect
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="originlock-store-listen", daemon=True)
        #: Whether the LISTEN connection is up (for health reports).
        self.connected = False

    def __repr__(self) -> str:
        return f"ChangeListener(channel={self._channel!r}, connected={self.connected})"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        import psycopg  # the postgres extra; only fleets on PostgreSQL start a listener

        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=2,
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=2,
                ) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    self.connected = True
                    if not first:
                        log.info("store change listener reconnected")
                        self._on_reconnect()  # notifications sent meanwhile are lost: read the log
                    first = False
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=WAKE_SECONDS):
                            change = parse_payload(notify.payload)
                            if change is not None:
                                self._on_change(change)
                            if self._stop.is_set():
                                break
            except Exception as exc:
                if self.connected or first:
                    log.warning("store change listener lost its connection: %s", type(exc).__name__)
                first = False
            self.connected = False
            self._stop.wait(RECONNECT_SECONDS)
