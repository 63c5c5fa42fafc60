"""Event loop selection (uvicorn's ``loops/auto.py``): uvloop when installed, else asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["loop_factory"]


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
