"""Fail fast while the store is down: one failure opens the breaker, a background probe closes it.

Without it every API request during an outage waits out its own timeout (up to libpq's 2-second connect
minimum against a hanging network) and ties up a worker thread. With it, the requests that meet the
outage first fail within their deadline and every later one fails at once with a 503, until a probe
thread (one attempt every :data:`PROBE_SECONDS`) reaches the database again.

Only PostgreSQL opens it: SQLite's only "unavailable" is a busy timeout behind another writer, which is
load, not an outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["PROBE_SECONDS", "Breaker"]

log = logging.getLogger("originlock.store")

#: How often the probe tries the store while the breaker is open (also the longest a recovered store
#: keeps being refused).
PROBE_SECONDS = 0.5


class Breaker:
    def __init__(self, probe: Callable[[], None], *, enabled: bool) -> None:
        self._probe = probe
        self._enabled = enabled
        self._open = False
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        #: When the breaker last opened (monotonic), for logs.
        self.opened_at = 0.0

    def __repr__(self) -> str:
        return f"Breaker(open={self._open})"

    @property
    def is_open(self) -> bool:
        return self._open

    def trip(self, reason: str) -> None:
        if not self._enabled:
            return
        with self._lock:
            if self._open:
                return
            self._open = True
            self.opened_at = time.monotonic()
        log.warning("store unreachable (%s): failing fast until it answers again", reason)
        threading.Thread(target=self._recover, name="originlock-store-probe", daemon=True).start()

    def stop(self) -> None:
        """End the probe (the store is being closed)."""
        self._stopped.set()

    def _recover(self) -> None:
        while not self._stopped.wait(PROBE_SECONDS):
            try:
                self._probe()
            except Exception:
                continue
            with self._lock:
                self._open = False
            log.warning("store reachable again after %.1f s", time.monotonic() - self.opened_at)
            return
