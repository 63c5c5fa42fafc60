"""Listening sockets, optionally shared between worker processes with ``SO_REUSEPORT``.

Out of file descriptors, ``accept()`` fails with EMFILE while the connection stays queued, so the listener
stays readable: asyncio's accept loop then fails ``backlog`` times per wake-up, logs each failure with a
traceback and retries a second later, over and over (the attack report's 163,548 tracebacks in 10 s).
:class:`ListenSocket` does what libuv (uvloop) does instead: it closes a descriptor kept in reserve,
accepts the newest connection with it, closes that connection at once (the visitor sees the connection
closed, not a SYN left unanswered until it times out) and opens the reserve again; when the queue is empty
asyncio just waits for the next connection. Connections already open are not affected.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Callable
from typing import Any, Final

from originlock.edge.limits import BACKLOG

__all__ = ["BACKLOG", "ListenSocket", "bind_listener"]

#: Connections shed per ``accept()`` call at EMFILE before giving the event loop back.
SHED_BATCH: Final = 64
_EXHAUSTED: Final = (errno.EMFILE, errno.ENFILE)


def _open_reserve() -> int:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


class _Reserve:
    """One spare descriptor per process, given up for a moment to accept-and-close at EMFILE."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # edges in threads of one process (tests) share it
        self._fd = -1

    def ensure(self) -> None:
        with self._lock:
            if self._fd < 0:
                self._fd = _open_reserve()

    def shed(self, sock: socket.socket) -> int:
        """Close the reserve, accept and close up to :data:`SHED_BATCH` queued connections, reopen it.
        Returns how many were shed (0 without a reserve)."""
        with self._lock:
            if self._fd < 0:
                return 0
            os.close(self._fd)
            self._fd = -1
            shed = 0
            try:
                for _ in range(SHED_BATCH):
                    fd, _ = sock._accept()  # type: ignore[attr-defined]  # the raw fd: no socket object
                    os.close(fd)
                    shed += 1
            except OSError:
                pass  # the queue is empty (EAGAIN), or another failure: stop either way
            finally:
                # -1 when a descriptor was taken meanwhile: the next bind tries again.
                self._fd = _open_reserve()
            return shed


_RESERVE: Final = _Reserve()


class ListenSocket(socket.socket):
    """A listening socket whose ``accept()`` sheds the newest connections at EMFILE (see the module
    docstring) and reports how many through :attr:`on_shed`. uvloop accepts on the descriptor itself
    (libuv does the same trick), so this only changes the stdlib event loop."""

    on_shed: Callable[[int], None] | None = None

    def accept(self) -> tuple[socket.socket, Any]:
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno not in _EXHAUSTED:
                raise
            shed = _RESERVE.shed(self)
            if not shed:
                raise  # no reserve: asyncio's own handling (counted by edge/overload.py)
            if self.on_shed is not None:
                self.on_shed(shed)
            raise BlockingIOError(errno.EAGAIN, "connections shed: out of file descriptors") from None


def bind_listener(host: str, port: int, *, reuse_port: bool, backlog: int = BACKLOG) -> ListenSocket:
    """A bound, listening, non-blocking TCP socket.

    ``reuse_port``: let other processes bind the same address (``--workers``); the kernel spreads
    incoming connections among them. ``backlog``: pass the same to ``loop.create_server``, which calls
    ``listen()`` again (asyncio and uvloop default to 100).
    """
    _RESERVE.ensure()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, address = infos[0]
    sock = ListenSocket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
