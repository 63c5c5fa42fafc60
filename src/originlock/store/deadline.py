"""Client-side deadlines on database connections: a transaction that overruns is cut off, not waited for.

Theory of operation. The server-side limits (``statement_timeout``, ``lock_timeout``,
``idle_in_transaction_session_timeout``, see :class:`StoreTimeouts`) bound what the *server* does, but
not what the client waits for: when the network path to PostgreSQL hangs (a proxy, a failed-over
address, a half-open TCP connection) a query or a ``COMMIT`` waits in ``recv()`` forever, and the
libpq driver has no read timeout. The :class:`Watchdog` is one daemon thread holding a heap of
deadlines; a connection is *armed* with a duplicate of its socket when a transaction begins and
disarmed when it ends. When a deadline passes first, the watchdog shuts the socket down: the blocked
``recv()`` returns at once, the driver raises, SQLAlchemy invalidates the connection, and the caller
gets :class:`~originlock.store.errors.StoreUnavailable`.

Why the shutdown of a duplicate: ``shutdown(2)`` acts on the socket, not the descriptor, so the
driver's own descriptor sees it; and the duplicate is ours to close, so a descriptor number reused
after the driver closed its own can never be shut down by mistake.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Connection, text

__all__ = ["API_TIMEOUTS", "SNAPSHOT_TIMEOUTS", "StoreTimeouts", "Watchdog", "WatchdogTicket"]


@dataclass(frozen=True)
class StoreTimeouts:
    """How long one use of the store may take, in seconds.

    The API's values keep every request's store work bounded by a few seconds, far below the timeouts of
    API clients (the ``cloudflare`` SDK waits 60 s, Terraform's provider longer), so a request whose
    client gave up has been rolled back long before (docs/deployment.md, "writes commit or never").
    """

    #: libpq's ``connect_timeout`` (it refuses anything under 2 s); also SQLite's busy timeout.
    connect: float = 2.0
    #: How long a caller waits for a new PostgreSQL connection (``store/connect_wait.py``); ``None``: libpq's
    #: ``connect_timeout``. The API's 503 must come well within a second when the store hangs.
    connect_wait: float | None = 0.75
    #: Server-side ``statement_timeout``: one statement on PostgreSQL.
    statement: float = 3.0
    #: Server-side ``lock_timeout``: waiting for a row another transaction holds.
    lock: float = 2.0
    #: Client-side: a whole transaction, from its first statement to the end of its ``COMMIT``. Also the
    #: server's ``idle_in_transaction_session_timeout``: a ``COMMIT`` held up in the network longer than
    #: this finds its session gone and is never applied.
    transaction: float = 3.0
    #: Waiting for a free connection in the pool (all in use means the store is slow: fail, don't queue).
    pool: float = 1.0
    #: The liveness check of a pooled connection before it is handed out.
    ping: float = 0.5
    #: A pooled connection whose last use ended less than this many seconds ago is handed out without the
    #: ping (a round trip). 0 for the API, whose ping is what answers 503 within 0.5 s when the network to
    #: the store hangs; the snapshot builder, on a change's way to the edges, trusts a connection it used in
    #: the last seconds (a hang is still cut by its transaction deadline).
    ping_idle: float = 0.0

    def server_options(self) -> str:
        """The ``options`` libpq connection parameter setting the server-side limits."""
        ms = {
            "statement_timeout": self.statement,
            "lock_timeout": self.lock,
            "idle_in_transaction_session_timeout": self.transaction,
        }
        return " ".join(f"-c{name}={int(value * 1000)}" for name, value in ms.items())


#: The control plane: a request's store work ends within a few seconds, in success or in a 503.
API_TIMEOUTS = StoreTimeouts()
#: The snapshot builder: a cold compile of 100k hostnames reads for seconds; it has its own pool.
SNAPSHOT_TIMEOUTS = StoreTimeouts(
    statement=120.0, transaction=180.0, pool=10.0, ping=2.0, ping_idle=5.0, connect_wait=None
)
#: Schema creation and migrations at start-up: one transaction that may rewrite every row, on a machine that
#: may be busy, possibly after waiting for another node's start-up lock. Bounded, but not by a request's budget.
MIGRATION_SECONDS = 900.0


def widen_server_limits(conn: Connection, seconds: float) -> None:
    """Raise the PostgreSQL session's statement, lock and idle-in-transaction limits to ``seconds`` for the
    current transaction only (``SET LOCAL``): the pooled connection keeps the request limits afterwards."""
    ms = int(seconds * 1000)
    for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
        conn.execute(text(f"SET LOCAL {name} = {ms}"))


@dataclass
class WatchdogTicket:
    """One armed deadline; :meth:`Watchdog.disarm` it when the guarded work ends."""

    deadline: float
    sock: socket.socket | None
    fired: bool = False
    done: bool = False


class Watchdog:
    """Shuts down the sockets of transactions that outlive their deadline (module docstring)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, WatchdogTicket]] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Watchdog(armed={len(self._heap)})"

    def arm(self, fd: int | None, seconds: float) -> WatchdogTicket:
        """Guard the socket ``fd`` (None: nothing to cut, the deadline is only checked) for ``seconds``."""
        sock = socket.socket(fileno=os.dup(fd)) if fd is not None and fd >= 0 else None
        ticket = WatchdogTicket(time.monotonic() + seconds, sock)
        if sock is None:
            return ticket
        with self._lock:
            heapq.heappush(self._heap, (ticket.deadline, next(self._counter), ticket))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="originlock-store-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()
        return ticket

    def disarm(self, ticket: WatchdogTicket) -> None:
        with self._lock:
            ticket.done = True
            sock, ticket.sock = ticket.sock, None
        if sock is not None:
            sock.close()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._heap:
                    self._wake.wait()
                deadline, _, ticket = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0 and not ticket.done:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if ticket.done or ticket.sock is None:
                    continue
                ticket.fired = True
                sock, ticket.sock = ticket.sock, None
            with contextlib.suppress(OSError):  # already closed by the peer: the driver sees that by itself
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
