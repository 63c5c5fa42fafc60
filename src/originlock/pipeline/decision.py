"""What a phase decides: go on, answer the visitor now, or forward to an origin."""

from __future__ import annotations

from typing import Final, Protocol

from originlock.origin.peer import OriginPeer
from originlock.proto.events import Headers, ResponseReceived

__all__ = ["CONTINUE", "BodyInspection", "Continue", "Decision", "Forward", "Respond", "ResponseInspection"]


# Plain classes, not dataclasses: a Forward is made per request, and compiled by mypyc a frozen dataclass
# is built through an interpreted __init__ and object.__setattr__ (≈ 0.4 µs; this way ≈ 0.05 µs).


class Continue:
    """Run the next phase."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CONTINUE"


CONTINUE: Final = Continue()


class Respond:
    """Answer the visitor without contacting an origin (redirect, block, error page)."""

    __slots__ = ("body", "close", "headers", "status")

    def __init__(self, status: int, headers: Headers | None = None, body: bytes = b"", close: bool = False) -> None:
        self.status = status
        self.headers: Headers = [] if headers is None else headers
        self.body = body
        #: Close the visitor connection after the response.
        self.close = close

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Respond) and (self.status, self.headers, self.body, self.close) == (
            other.status,
            other.headers,
            other.body,
            other.close,
        )

    def __repr__(self) -> str:
        return f"Respond(status={self.status}, headers={self.headers!r}, body={self.body!r}, close={self.close})"


class Forward:
    """Send the request to ``peer``: ``head`` is the request head for the origin, already rewritten and
    serialised (the body, if any, follows it as the visitor sends it)."""

    __slots__ = ("head", "peer")

    def __init__(self, peer: OriginPeer, head: bytes) -> None:
        self.peer = peer
        self.head = head

    def __repr__(self) -> str:
        return f"Forward(peer={self.peer!r}, head={self.head!r})"


Decision = Continue | Respond


class BodyInspection(Protocol):
    """A WAF decision that needs the start of the request body (managed rules inspect it).

    Set on ``ctx.body_inspection`` by the WAF hook; the exchange reads at most ``limit`` body bytes
    (plus the rest of the last chunk received) before connecting to the origin, calls it with them, and
    then either answers with the returned ``Respond`` or forwards the buffered bytes and streams the rest.
    """

    @property
    def limit(self) -> int: ...

    def __call__(self, body: bytes) -> Decision: ...


class ResponseInspection(Protocol):
    """A WAF decision on the origin's response (managed rules' response phase: data leakage).

    Set on ``ctx.response_inspection`` by the WAF hook for a zone that deploys response rules; None (the
    common case) leaves the response path as it is. At the origin's response head the exchange asks
    :meth:`holds`: when True it reads body events until ``limit`` bytes (plus the rest of the last piece)
    or the end, and calls the inspection with them; otherwise it calls it at once with ``None``. Then it
    either answers with the returned ``Respond`` (nothing of the origin's response was sent) or sends the
    head, the held bytes, and streams the rest.
    """

    @property
    def limit(self) -> int: ...

    def holds(self, response: ResponseReceived) -> bool: ...

    def __call__(self, response: ResponseReceived, body: bytes | None) -> Decision: ...
