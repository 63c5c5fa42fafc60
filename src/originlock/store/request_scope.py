"""One API request's store work: its first checkout is pinged, the rest trust what that proved; and what
its writes leave for after the response (:class:`RequestScope`).

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["RequestScope", "after_response", "request_scope", "request_started"]

_STARTED: ContextVar[float | None] = ContextVar("originlock_request_started", default=None)
_SCOPE: ContextVar[RequestScope | None] = ContextVar("originlock_request_scope", default=None)


class RequestScope:
    """Work a request's store calls leave for after its response: this process's snapshot refresh for a
    write it committed (``Store.committed_hooks``), which otherwise competed with the response for the
    interpreter on its way out (issue 15). The write has committed before it is queued here."""

    def __init__(self) -> None:
        self._after: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"RequestScope(after_response={len(self._after)})"

    def defer(self, call: Callable[[], None]) -> None:
        self._after.append(call)

    def run_deferred(self) -> None:
        """Run what was deferred (once: called when the response is out, and again when the request ends)."""
        calls, self._after = self._after, []
        for call in calls:
            call()


@contextmanager
def request_scope() -> Iterator[RequestScope]:
    """Mark the store work inside as one API request's (module docstring); what it defers runs at the
    latest when the scope ends."""
    scope = RequestScope()
    started, current = _STARTED.set(time.monotonic()), _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(current)
        _STARTED.reset(started)
        scope.run_deferred()


def after_response(call: Callable[[], None]) -> bool:
    """Leave ``call`` for after the current request's response; False (not deferred) outside a request."""
    scope = _SCOPE.get()
    if scope is None:
        return False
    scope.defer(call)
    return True


def request_started() -> float | None:
    """When the current request's scope began (``time.monotonic()``), or None outside one."""
    return _STARTED.get()
