"""An idle edge process sleeps: its housekeeping tick parks while there is nothing to keep.

The tick (``edge/server.py``) flushes the access log, expires idle origin connections, notices snapshot
swaps, forgets the SNI answers of the last second, logs overload, and rotates the TLS session-ticket key.
All of that follows visitors: with no visitor connection open or in its handshake, no origin connection
in the pool and no overload count waiting for its log line, a tick finds nothing to do, and an idle
process woke once a second for it (twice with ``--workers``: the worker's report followed the tick).

So after a tick that leaves nothing behind the edge *parks* (:meth:`IdleGate.park`) until the first of:

- a visitor connection is accepted (the listener's protocol factory calls :meth:`IdleGate.wake`);
- an overload event is counted (an ``accept()`` that failed for lack of descriptors accepts nothing);
- the next ticket-key rotation instant, or :data:`PARK_MAX_SECONDS` (what no event reports, such as an
  origin connection whose dial completes into the pool after its visitor left, waits at most that long).

:meth:`IdleGate.wake` runs its ``on_wake`` callbacks at once, inside the accept: the ticket key is
rotated before the new connection's handshake, so a period that ended while the edge slept is never
used for a ticket. The tick runs right after, then once a second for as long as there is anything to keep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

__all__ = ["PARK_MAX_SECONDS", "IdleGate"]

#: The longest an idle edge process sleeps without a tick (a wake-up a minute costs nothing measurable).
PARK_MAX_SECONDS: Final = 60.0


class IdleGate:
    """Parks the housekeeping of one edge process; anything on its event loop may :meth:`wake` it."""

    __slots__ = ("_awake", "on_wake", "parked", "parks")

    def __init__(self) -> None:
        #: The housekeeping sleeps until :meth:`wake` (read on every accept: a plain attribute).
        self.parked = False
        #: Called by :meth:`wake`, before the housekeeping runs (ticket-key rotation).
        self.on_wake: list[Callable[[], None]] = []
        #: How many times the housekeeping parked (tests, statistics).
        self.parks = 0
        self._awake: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"IdleGate(parked={self.parked}, parks={self.parks})"

    def _event(self) -> asyncio.Event:
        if self._awake is None:
            self._awake = asyncio.Event()
            self._awake.set()
        return self._awake

    def wake(self) -> None:
        """Something to keep: run ``on_wake`` and end the park now. Cheap when not parked; call it from the
        event loop's thread."""
        if not self.parked:
            return
        self.parked = False
        for callback in self.on_wake:
            callback()
        self._event().set()

    async def park(self, seconds: float) -> None:
        """Sleep until :meth:`wake` or ``seconds`` have passed."""
        event = self._event()
        event.clear()
        self.parked = True
        self.parks += 1
        timer = asyncio.get_running_loop().call_later(seconds, self.wake)
        try:
            await event.wait()
        finally:
            timer.cancel()
            self.parked = False
            event.set()

    async def wait_awake(self) -> None:
        """Return at once unless parked; else when the park ends (the worker's reports wait here)."""
        if self.parked:
            await self._event().wait()
