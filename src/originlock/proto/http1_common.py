"""What both HTTP/1.1 parsers share: the size limits, the fields the edge refuses in underscore spellings,
the response framing rule, and the released parsers' stand-ins (``proto/http1.py``,
``proto/http1_response.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import httptools

from originlock.proto.events import Headers, MessageEnded, NameFilter, lower_name
from originlock.proto.serialize import HOP_BY_HOP

__all__ = ["DEFAULT_LIMITS", "Limits"]

#: Cloudflare answers 414 above 16 KiB of URL (developers.cloudflare.com/workers/platform/limits,
#: "URL size 16 KB"); nginx's default large_client_header_buffers is 8 KiB per line.
MAX_URL_BYTES: Final = 16 * 1024
#: Cloudflare: "request headers ... 32 KB" (431 above it); nginx's 4 x 8 KiB buffers give the same total.
MAX_REQUEST_HEAD_BYTES: Final = 32 * 1024
#: Cloudflare 520: "headers > 128 KB" from the origin (spec §7).
MAX_RESPONSE_HEAD_BYTES: Final = 128 * 1024
#: Per header line overhead counted towards the head size (": " and CRLF).
_LINE_OVERHEAD: Final = 4
_VERSIONS: Final = {"1.1": b"1.1", "1.0": b"1.0"}
#: MessageEnded has no fields: one shared instance instead of an allocation per message.
_ENDED: Final = MessageEnded()


@dataclass(frozen=True)
class Limits:
    """Size limits applied while parsing (validated on creation)."""

    max_url_bytes: int = MAX_URL_BYTES
    max_request_head_bytes: int = MAX_REQUEST_HEAD_BYTES
    max_response_head_bytes: int = MAX_RESPONSE_HEAD_BYTES

    def __post_init__(self) -> None:
        if min(self.max_url_bytes, self.max_request_head_bytes, self.max_response_head_bytes) < 256:
            raise ValueError("HTTP limits below 256 bytes cannot hold a request line")


DEFAULT_LIMITS: Final = Limits()


#: Fields the edge interprets or sets itself, among those with a dash in their name. A visitor's field whose
#: name reads as one of them once its underscores are read as dashes (``Transfer_Encoding``) is refused:
#: CGI-style origins (PHP, WSGI environ) map both spellings to one variable, so the origin could act on a
#: field the edge did not. (Host, Connection, TE... have no dash, hence no other spelling.)
_UNDERSCORE_SENSITIVE: Final = frozenset(
    name
    for name in HOP_BY_HOP
    | {b"content-length", b"x-forwarded-for", b"x-forwarded-proto", b"cf-connecting-ip", b"cf-visitor", b"cf-ray"}
    if b"-" in name
)


def _underscore_spellings(name: bytes) -> set[bytes]:
    """Every spelling of ``name`` with one or more of its dashes written as underscores."""
    spellings = {name}
    for at, byte in enumerate(name):
        if byte == 45:  # "-"
            spellings |= {s[:at] + b"_" + s[at + 1 :] for s in spellings}
    return spellings - {name}


#: The refused spellings, looked up as they are (a set lookup per candidate field, no search in its name).
_UNDERSCORED: Final = frozenset(s for name in _UNDERSCORE_SENSITIVE for s in _underscore_spellings(name))
#: The request and response fields the parsers look at.
_REQUEST_NAMES: Final = NameFilter([b"expect", b"transfer-encoding", b"content-length", *_UNDERSCORE_SENSITIVE])
_FRAMING_NAMES: Final = NameFilter([b"transfer-encoding", b"content-length"])


def _framing(headers: Headers) -> str:
    """``chunked`` / ``length`` / ``none`` / ``close`` (neither field: read until EOF) for a response that
    may have a body, from the header fields llhttp already validated. One pass (there were two)."""
    for name, value in headers:
        if not _FRAMING_NAMES.may_be(name):
            continue
        # The usual spelling compared as it is: lower_name hashes the parser's new bytes object.
        lower = b"content-length" if name == b"Content-Length" else lower_name(name)
        if lower == b"transfer-encoding" and b"chunked" in value.lower():
            return "chunked"
        if lower == b"content-length":
            if value and value[-1] in (32, 9):  # llhttp keeps trailing whitespace; leading is never there
                value = value.strip()
            return "length" if value != b"0" else "none"
    return "close"


class _NoCallbacks:
    """The owner of the released parsers below: defines no llhttp callback, so feeding that parser produces nothing."""


#: What a released parser holds instead of its own llhttp parser (see :meth:`RequestParser.release`): shared
#: instances, so releasing allocates nothing, and the attribute keeps its type (no ``None`` check per
#: feed on the request path).
_RELEASED_REQUESTS: Final = httptools.HttpRequestParser(_NoCallbacks())
_RELEASED_RESPONSES: Final = httptools.HttpResponseParser(_NoCallbacks())
