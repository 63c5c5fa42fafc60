"""uvicorn's server for the control plane, without its ten wake-ups a second when nothing happens.

uvicorn's ``Server.main_loop`` sleeps 0.1 s between ticks to notice ``should_exit`` (set by a signal
handler) and refreshes its ``Date`` header every tenth tick. On an idle node that was ten event-loop
wake-ups a second in every ``serve`` and ``api`` process (issue 15: idle CPU near zero). Here the loop ticks
once a second, when the ``Date`` header needs refreshing anyway, and setting ``should_exit`` (uvicorn's
signal handlers, ours in ``cli/serve.py``) wakes it at once, so a stop is as quick as before.
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn

__all__ = ["TICK_SECONDS", "ApiServer"]

#: uvicorn refreshes its Date header once a second (its 10th tick of 0.1 s): one tick a second keeps that.
TICK_SECONDS = 1.0
#: uvicorn's ``on_tick`` does its once-a-second work when its counter is a multiple of this.
_TICKS_PER_SECOND = 10


class ApiServer(uvicorn.Server):
    """A ``uvicorn.Server`` whose main loop sleeps a second per tick, or until ``should_exit`` is set."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit_asked: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._should_exit = False
        super().__init__(config)

    def __repr__(self) -> str:
        return f"ApiServer(should_exit={self._should_exit})"

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        loop, event = self._loop, self._exit_asked
        if value and loop is not None and event is not None and not loop.is_closed():
            # From a signal handler (between two bytecodes of the loop's own thread) or another thread.
            loop.call_soon_threadsafe(event.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit_asked = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + _TICKS_PER_SECOND) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_asked.wait(), TICK_SECONDS)
            should_exit = await self.on_tick(counter)
