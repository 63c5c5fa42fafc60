"""Listening sockets, optionally shared between worker processes with ``SO_REUSEPORT``."""

from __future__ import annotations

import socket

from originlock.edge.limits import BACKLOG

__all__ = ["BACKLOG", "bind_listener"]


def bind_listener(host: str, port: int, *, reuse_port: bool, backlog: int = BACKLOG) -> socket.socket:
    """A bound, listening, non-blocking TCP socket.

    ``reuse_port``: let other processes bind the same address (``--workers``); the kernel spreads
    incoming connections among them. ``backlog``: pass the same to ``loop.create_server``, which calls
    ``listen()`` again (asyncio and uvloop default to 100).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
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
