"""Past-tense events produced by the HTTP/1.1 parsers (h11's event vocabulary, our names).

The per-message events are plain ``__slots__`` classes, not frozen dataclasses: a frozen dataclass's
``__init__`` sets every field through ``object.__setattr__``, and frozen-dataclass ``__init__`` was 6.7 %
self time of the edge (docs/performance.md, step 4 measures the change). They are treated as immutable
all the same; equality is by value, as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from originlock.cache import BoundedCache

__all__ = [
    "BodyReceived",
    "Event",
    "Headers",
    "MessageEnded",
    "NameFilter",
    "RequestReceived",
    "ResponseReceived",
    "lower_name",
]

#: Header fields in wire order, names and values as received (names keep their case).
Headers = list[tuple[bytes, bytes]]

#: Field name as received -> lower-case. A deployment sees a few dozen distinct names, and every field
#: of every message is classified by its name several times (framing, hop-by-hop, Host): a lookup here
#: replaces an allocation by ``bytes.lower()`` each time, and the cached lower-case object keeps its
#: hash for the set and dict lookups that follow. Bounded, since peers choose the names.
_LOWER: Final = BoundedCache[bytes, bytes](4096)


def lower_name(name: bytes) -> bytes:
    """``name.lower()``, from a bounded cache."""
    lower = _LOWER.get(name)
    if lower is None:
        lower = _LOWER.put(name, name.lower())
    return lower


class NameFilter:
    """Rules out, cheaply, field names that cannot be one of a few names (any case).

    The hot path asks :meth:`may_be` before :func:`lower_name`: a field name fresh from the parser is a new
    bytes object whose hash must be computed for that lookup, and most fields (``Server``, ``Date``,
    ``Content-Type``, ``Accept``, ...) are none of the few names the edge looks for. A bit per length and a
    bit per first letter (its low five bits: the same for both cases) rule out nearly all of them with
    integer operations on small ints (no object is made).
    """

    __slots__ = ("_lengths", "_letters")

    def __init__(self, names: Iterable[bytes]) -> None:
        self._lengths = 0
        self._letters = 0
        for name in names:
            self._lengths |= 1 << len(name)
            self._letters |= 1 << (name[0] & 31)

    def may_be(self, name: bytes) -> bool:
        """False when ``name`` is certainly none of the names."""
        size = len(name)
        return size > 0 and bool((self._lengths >> size) & 1) and bool((self._letters >> (name[0] & 31)) & 1)

    def __or__(self, other: NameFilter) -> NameFilter:
        both = NameFilter(())
        both._lengths = self._lengths | other._lengths
        both._letters = self._letters | other._letters
        return both


class RequestReceived:
    """A complete request head arrived."""

    __slots__ = ("body", "expect_continue", "headers", "keep_alive", "method", "target", "version")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: Headers,
        keep_alive: bool,
        body: str,
        expect_continue: bool,
    ) -> None:
        self.method = method
        #: The request-target in origin-form (``/path?q``), as :class:`~originlock.proto.http1.RequestParser`
        #: makes it: an absolute-form target's authority moved to Host, the path normalised
        #: (``proto/target.py``). Built by other means, it may be any form; ``proto/target.py`` reads them all.
        self.target = target
        #: ``b"1.1"`` or ``b"1.0"``.
        self.version = version
        self.headers = headers
        #: Whether the visitor allows the connection to be reused after this exchange.
        self.keep_alive = keep_alive
        #: ``chunked``, ``length`` or ``none``: how the request body is framed.
        self.body = body
        self.expect_continue = expect_continue

    def header(self, name: bytes) -> bytes | None:
        """First value of header ``name`` (lower-case), or None."""
        for key, value in self.headers:
            if len(key) == len(name) and lower_name(key) == name:
                return value
        return None

    def _fields(self) -> tuple[object, ...]:
        return (self.method, self.target, self.version, self.headers, self.keep_alive, self.body, self.expect_continue)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RequestReceived) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # holds a list, like the dataclass it replaced

    def __repr__(self) -> str:
        return f"RequestReceived({self.method.decode()} {self.target.decode(errors='replace')})"


class ResponseReceived:
    """A complete (final, non-1xx) response head arrived from the origin."""

    __slots__ = ("body", "headers", "keep_alive", "raw_fields", "raw_of", "reason", "status", "version")

    def __init__(
        self, status: int, reason: bytes, version: bytes, headers: Headers, keep_alive: bool, body: str
    ) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        #: ``chunked``, ``length``, ``none`` (no body by method/status) or ``close`` (read until EOF).
        self.body = body
        #: The field lines of ``raw_of`` exactly as :func:`~originlock.proto.serialize.add_parsed_field`
        #: writes them (``name: value\r\n`` each, in order), when the parser saw them so on the wire (the
        #: usual head, whole in one read): a head writer may copy runs of them instead of re-serialising
        #: each field. ``b""`` when unknown. Valid only while ``headers is raw_of``: whoever changes the
        #: fields assigns a new list (``edge/responses.py`` does), which turns it off.
        self.raw_fields = b""
        self.raw_of: Headers | None = None

    def _fields(self) -> tuple[object, ...]:
        return (self.status, self.reason, self.version, self.headers, self.keep_alive, self.body)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResponseReceived) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ResponseReceived({self.status})"


class BodyReceived:
    """A piece of message body (already de-chunked)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BodyReceived) and self.data == other.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"BodyReceived({len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class MessageEnded:
    """The current message (request or response) is complete."""


Event = RequestReceived | ResponseReceived | BodyReceived | MessageEnded
