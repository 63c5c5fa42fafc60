"""Event loop selection (uvicorn's ``loops/auto.py``): uvloop when installed, else asyncio.

Every edge process runs on the loop made here: ``originlock serve``'s own process (control plane and the
first edge) as well as each ``--workers`` process. uvloop's TLS transport and callbacks cost about half
of the stdlib loop's per request (spec/performance.md §5).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["loop_factory", "loop_kind"]


def loop_factory(name: str = "uvloop") -> Callable[[], asyncio.AbstractEventLoop]:
    """A callable making a new event loop of kind ``name`` (``uvloop`` falls back to asyncio)."""
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
            return asyncio.new_event_loop
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return asyncio.new_event_loop


def loop_kind(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: what a running edge says it runs on (banner, worker start lines)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
