"""A new database connection within a deadline shorter than libpq's: the API's 503 when the store hangs.

libpq (and psycopg after it) refuses a ``connect_timeout`` under 2 s. A pooled connection is pinged under
the watchdog's 0.5 s deadline (``store/db.py``), but an API request that finds the pool empty opens a new
connection, and against a store that accepts TCP and then says nothing (a hung server, a black-holed
network) that waited the whole 2 s before the request could answer 503. So the connect runs in a helper
thread and the request waits for it only :attr:`StoreTimeouts.connect_wait` seconds; a connect that
finishes after its caller gave up is closed by that thread, never handed to anyone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ConnectTimedOut", "connect_within"]


class ConnectTimedOut(Exception):
    """The store did not complete a new connection within the wait."""


class _Attempt:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.connection: Any = None
        self.error: BaseException | None = None
        self.abandoned = False


def connect_within(connect: Callable[[], Any], seconds: float) -> Any:
    """``connect()``'s connection if it completes within ``seconds``; raises what it raised, or
    :class:`ConnectTimedOut` (the attempt goes on in its thread and closes what it gets).

    No frame of this module is left where a reference cycle can reach it: the edge's requests are freed by
    reference counting and tests/edge counts what the collector finds in the whole process. (A driver's
    exception often is in a cycle with its own frames: psycopg's connect keeps the error it raises in a local.)
    """
    outcome = _attempt(connect, seconds)
    if isinstance(outcome, BaseException):
        try:
            raise outcome
        finally:
            outcome = None
    return outcome


def _attempt(connect: Callable[[], Any], seconds: float) -> Any:
    """The connection, or the exception to raise (returned, not raised: no traceback holds this frame)."""
    attempt = _Attempt()
    threading.Thread(target=_run, args=(attempt, connect), name="originlock-store-connect", daemon=True).start()
    attempt.done.wait(seconds)
    with attempt.lock:
        connection, error = attempt.connection, attempt.error
        attempt.connection = attempt.error = None
        if connection is None and error is None:
            attempt.abandoned = True
            return ConnectTimedOut(f"no connection to the store within {seconds:g} s")
    return error if error is not None else connection


def _run(attempt: _Attempt, connect: Callable[[], Any]) -> None:
    connection: Any = None
    error: BaseException | None = None
    try:
        connection = connect()
    except BaseException as exc:  # handed to the caller, who raises it
        # Without its traceback: the frames it holds (this one among them) would stay as long as it does.
        error = exc.with_traceback(None)
    with attempt.lock:
        if not attempt.abandoned:
            attempt.connection, attempt.error = connection, error
            connection = None
    error = None
    attempt.done.set()
    if connection is not None:
        connection.close()  # the caller has answered already: nobody will use it
