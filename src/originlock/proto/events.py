"""Past-tense events produced by the HTTP/1.1 parsers (h11's event vocabulary, our names)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BodyReceived", "Event", "Headers", "MessageEnded", "RequestReceived", "ResponseReceived"]

#: Header fields in wire order, names and values as received (names keep their case).
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A complete request head arrived."""

    method: bytes
    #: The request-target exactly as sent (origin-form ``/path?q`` or absolute-form).
    target: bytes
    #: ``b"1.1"`` or ``b"1.0"``.
    version: bytes
    headers: Headers
    #: Whether the visitor allows the connection to be reused after this exchange.
    keep_alive: bool
    #: ``chunked``, ``length`` or ``none``: how the request body is framed.
    body: str
    expect_continue: bool

    def header(self, name: bytes) -> bytes | None:
        """First value of header ``name`` (lower-case), or None."""
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"RequestReceived({self.method.decode()} {self.target.decode(errors='replace')})"


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A complete (final, non-1xx) response head arrived from the origin."""

    status: int
    reason: bytes
    version: bytes
    headers: Headers
    keep_alive: bool
    #: ``chunked``, ``length``, ``none`` (no body by method/status) or ``close`` (read until EOF).
    body: str

    def __repr__(self) -> str:
        return f"ResponseReceived({self.status})"


@dataclass(frozen=True, slots=True)
class BodyReceived:
    """A piece of message body (already de-chunked)."""

    data: bytes

    def __repr__(self) -> str:
        return f"BodyReceived({len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class MessageEnded:
    """The current message (request or response) is complete."""


Event = RequestReceived | ResponseReceived | BodyReceived | MessageEnded
