"""One API request's store connections: its first checkout is pinged, the rest trust what that proved.

The API's store pings every pooled connection before handing it out (``StoreTimeouts.ping_idle`` is 0):
that ping, under a 0.5-s deadline, is what answers 503 quickly when the network to the store hangs. A
``PATCH`` used to pay it three times (the gate's token lookup, the write, the audit entry after the
answer), one round trip each. Inside :func:`request_scope` a connection the store answered on *since the
request began* is handed out unpinged: it has just proved itself, and the pool is LIFO, so the request's
later checkouts usually get the very connection its token lookup used.

What it gives up: a hang that begins in the few milliseconds between two of one request's store uses is
cut by the transaction's own deadline (3 s, ``StoreTimeouts.transaction``) rather than the ping's 0.5 s;
the breaker then answers every later request at once, as before. A hang that began before the request is
still met by its first checkout's ping.

The scope is a context variable: set by ``api/gate.py`` on the request's task, it is seen by the worker
threads the request's store work runs in (anyio and Starlette copy the context into them).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["request_scope", "request_started"]

_STARTED: ContextVar[float | None] = ContextVar("originlock_request_started", default=None)


@contextmanager
def request_scope() -> Iterator[None]:
    """Mark the store work inside as one API request's (for the pool's ping: module docstring)."""
    token = _STARTED.set(time.monotonic())
    try:
        yield
    finally:
        _STARTED.reset(token)


def request_started() -> float | None:
    """When the current request's scope began (``time.monotonic()``), or None outside one."""
    return _STARTED.get()
