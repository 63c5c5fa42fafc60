"""uvicorn's server for the control plane, without its ten wake-ups a second when nothing happens.

uvicorn's ``Server.main_loop`` sleeps 0.1 s between ticks to notice ``should_exit`` (set by a signal
handler) and refreshes its ``Date`` header every tenth tick. On an idle node that was ten event-loop
wake-ups a second in every ``serve`` and ``api`` process (issue 15: idle CPU near zero). Here the loop ticks
once a second while a connection is open (the ``Date`` header's own period), and not at all while none is:
the first connection of a quiet spell refreshes the ``Date`` header itself, when uvicorn's protocol adds it
to the server's connections (before it reads a byte of the request), and wakes the loop. Setting
``should_exit`` (uvicorn's signal handlers, ours in ``cli/serve.py``) wakes it at once, so a stop is as
quick as before.

What uvicorn's tick does besides: ``callback_notify`` and ``limit_max_requests``, neither of which the
control plane sets (a configuration that sets them gets the once-a-second tick throughout).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import uvicorn

__all__ = ["TICK_SECONDS", "ApiServer"]

#: uvicorn refreshes its Date header once a second (its 10th tick of 0.1 s): one tick a second keeps that.
TICK_SECONDS = 1.0
#: uvicorn's ``on_tick`` does its once-a-second work when its counter is a multiple of this.
_TICKS_PER_SECOND = 10


class _Connections(set[Any]):
    """uvicorn's set of open connections, calling ``on_first`` when a connection joins an empty set."""

    def __init__(self, on_first: Callable[[], None]) -> None:
        super().__init__()
        self._on_first = on_first

    def add(self, connection: Any) -> None:
        if not self:
            self._on_first()
        super().add(connection)


class ApiServer(uvicorn.Server):
    """A ``uvicorn.Server`` whose main loop sleeps a second per tick while connections are open and until
    one opens (or ``should_exit`` is set) while none is."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._should_exit = False
        #: The main loop waits for a connection (no tick until then).
        self.parked = False
        super().__init__(config)
        # uvicorn's protocols keep a reference to this set from their construction on: replaced before any.
        self.server_state.connections = _Connections(self._first_connection)

    def __repr__(self) -> str:
        return f"ApiServer(should_exit={self._should_exit}, parked={self.parked})"

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        loop, event = self._loop, self._wake
        if value and loop is not None and event is not None and not loop.is_closed():
            # From a signal handler (between two bytecodes of the loop's own thread) or another thread.
            loop.call_soon_threadsafe(event.set)

    def _parks(self) -> bool:
        """Whether an idle main loop may stop ticking: only uvicorn's Date header needs the tick here."""
        return self.config.callback_notify is None and self.limit_max_requests is None

    def _refresh_date(self) -> None:
        """uvicorn's once-a-second header refresh (``Server.on_tick``), for the first connection after a
        park: its response must not carry the Date of the last tick, minutes ago."""
        date = [(b"date", formatdate(time.time(), usegmt=True).encode())] if self.config.date_header else []
        self.server_state.default_headers = date + self.config.encoded_headers

    def _first_connection(self) -> None:
        """A connection joins an empty set (on the loop, in its ``connection_made``)."""
        if self.parked:
            self.parked = False
            self._refresh_date()
            if self._wake is not None:
                self._wake.set()

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + _TICKS_PER_SECOND) % 864000
            self._wake.clear()
            if not self.server_state.connections and self._parks() and not self._should_exit:
                self.parked = True
                try:
                    await self._wake.wait()
                finally:
                    self.parked = False
            else:
                timer = self._loop.call_later(TICK_SECONDS, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    timer.cancel()
            should_exit = await self.on_tick(counter)
