"""The visitor connections of one edge process: how many may be open, which are, and shutting them down."""

from __future__ import annotations

from typing import Protocol

from originlock.edge.overload import visitor_capacity

__all__ = ["VisitorConnection", "Visitors"]


class VisitorConnection(Protocol):
    """An open visitor connection, whatever its protocol."""

    def close_if_idle(self) -> None:
        """Graceful shutdown: close now unless a request is being answered (then after it)."""
        ...

    def close(self) -> None: ...


class Visitors:
    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        #: Visitor connections allowed at once (``--max-connections`` lowered to fit the open-files limit;
        #: re-read by :meth:`recount`).
        self.capacity = visitor_capacity(max_connections)
        #: Accepted connections still in their TLS handshake (counted by ``edge/admission.py``'s Admission).
        self.admitting = 0
        self.open: set[VisitorConnection] = set()
        #: Shutting down: connections close after their current request.
        self.draining = False

    def full(self) -> bool:
        return len(self.open) + self.admitting >= self.capacity

    def recount(self) -> None:
        self.capacity = visitor_capacity(self.max_connections)

    def close_idle(self) -> None:
        for conn in list(self.open):
            conn.close_if_idle()

    def close_all(self) -> None:
        for conn in list(self.open):
            conn.close()
