"""Listening sockets, optionally shared between worker processes with ``SO_REUSEPORT``."""

from __future__ import annotations

import socket

__all__ = ["bind_listener"]

#: Accept backlog: nginx's default on Linux is 511; wrk with 200+ connections needs more than 100.
BACKLOG = 1024


def bind_listener(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound, listening, non-blocking TCP socket.

    ``reuse_port``: let other processes bind the same address (``--workers``); the kernel spreads
    incoming connections among them.
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
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
