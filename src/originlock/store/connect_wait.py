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

    No reference cycle is left behind (an exception kept where its traceback's frames can reach it would be
    one): the edge's requests are freed by reference counting, and the collector is what they avoid."""
    attempt = _Attempt()

    def run() -> None:
        connection: Any = None
        error: BaseException | None = None
        try:
            connection = connect()
        except BaseException as exc:  # handed to the caller, who re-raises it
            error = exc
        with attempt.lock:
            if not attempt.abandoned:
                attempt.connection, attempt.error = connection, error
                connection = None
        error = None
        attempt.done.set()
        if connection is not None:
            connection.close()  # the caller has answered already: nobody will use it

    threading.Thread(target=run, name="originlock-store-connect", daemon=True).start()
    attempt.done.wait(seconds)
    with attempt.lock:
        connection, error = attempt.connection, attempt.error
        attempt.connection = attempt.error = None
        if connection is None and error is None:
            attempt.abandoned = True
    if error is not None:
        try:
            raise error
        finally:
            error = None
    if connection is None:
        raise ConnectTimedOut(f"no connection to the store within {seconds:g} s")
    return connection
