"""Ephemeral ports for test servers, never the same one twice in a process.

A port is free when it is picked and taken only when its server binds it, later: a test that picks ports for
nginx and then for ``originlock serve`` before either binds could get one port twice (about once in 7,000
runs), and requests then reach the wrong server. Every pick of the test process goes through here, so that
cannot happen among them.
"""

from __future__ import annotations

import socket
import threading

__all__ = ["free_port"]

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
