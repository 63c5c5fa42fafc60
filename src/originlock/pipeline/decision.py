"""What a phase decides: go on, answer the visitor now, or forward to an origin."""

from __future__ import annotations

from dataclasses import dataclass, field

from originlock.origin.peer import OriginPeer
from originlock.proto.events import Headers

__all__ = ["CONTINUE", "Continue", "Decision", "Forward", "Respond"]


@dataclass(frozen=True, slots=True)
class Continue:
    """Run the next phase."""


CONTINUE = Continue()


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer the visitor without contacting an origin (redirect, block, error page)."""

    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    #: Close the visitor connection after the response.
    close: bool = False


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the request to ``peer`` with ``headers`` (already rewritten for the origin)."""

    peer: OriginPeer
    headers: Headers


Decision = Continue | Respond
