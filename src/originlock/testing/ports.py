"""Ephemeral ports for test servers, never the same one twice in a process.

A port is free when it is picked and taken only when its server binds it, later: a test that picks ports for
nginx and then for ``originlock serve`` before either binds could get one port twice (about once in 7,000
runs), and requests then reach the wrong server. Every pick of the test process goes through here, so that
cannot happen among them.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["free_port", "unanswered_port"]

_given: set[int] = set()
_lock = threading.Lock()


def free_port() -> int:
    """An unused TCP port on 127.0.0.1, not handed out before by this process."""
    with _lock:
        for _ in range(100):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _given:
                _given.add(port)
                return port
    raise RuntimeError("no fresh ephemeral port after 100 tries")


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full: further SYNs are dropped (no SYN+ACK), as by a
    firewalled origin, so a connection attempt hangs until its own timeout."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(full.getsockname())
            yield int(full.getsockname()[1])
        finally:
            for filler in fillers:
                filler.close()
