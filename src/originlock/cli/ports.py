"""Listening addresses for `originlock serve`: bind the API's socket before anything is announced, and name the
address when a port is already taken (the OS error alone says "Address already in use" without saying which)."""

from __future__ import annotations

import errno
import socket

from originlock.edge.listeners import ListenSocket, bind_listener

__all__ = ["API_BACKLOG", "PortInUse", "bind_api_socket", "busy_addresses", "describe_address"]


#: uvicorn's default backlog, for the API's listener.
API_BACKLOG = 2048


class PortInUse(OSError):
    """A listening address could not be bound; ``str()`` names the address and the flag that sets it."""


def describe_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_api_socket(host: str, port: int, backlog: int) -> ListenSocket:
    """A listening socket for the API, bound now so that a busy port fails before the banner is printed. It is
    a :class:`ListenSocket`, so that out of file descriptors it sheds the newest connection instead of
    asyncio's accept storm (edge/listeners.py).

    Raises:
        PortInUse: the address is taken or cannot be bound; the message names it and says which flag to change.
    """
    try:
        sock = bind_listener(host, port, reuse_port=False, backlog=backlog)
    except OSError as exc:
        in_use = exc.errno == errno.EADDRINUSE
        why = "the port is already in use; stop the other server or pick another --api" if in_use else exc.strerror
        raise PortInUse(f"cannot listen on {describe_address(host, port)} for the API (--api): {why}") from None
    sock.set_inheritable(True)
    return sock


def busy_addresses(addresses: list[tuple[str, str, int]]) -> list[str]:
    """What is wrong with each ``(flag, host, port)`` that cannot be bound right now, naming the address:
    ``"127.0.0.1:8080 (--http) is already in use"``.

    Used after the edge failed to start, to say which of its listeners was the problem; a probe bind is
    cheap, and the other server that holds the port is still holding it.
    """
    problems = []
    for flag, host, port in addresses:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            with socket.socket(infos[0][0], infos[0][1], infos[0][2]) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(infos[0][4])
        except OSError as exc:
            why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc.strerror or exc}"
            problems.append(f"{describe_address(host, port)} ({flag}) {why}")
    return problems
