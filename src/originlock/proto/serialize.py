"""HTTP/1.1 messages back to bytes (RFC 9112 §3, §4, §7.1). Pure; the caller decides framing."""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from originlock.errors import UnsafeHeaderValue
from originlock.proto.events import Headers

__all__ = [
    "HOP_BY_HOP",
    "LAST_CHUNK",
    "add_field",
    "add_parsed_field",
    "check_field",
    "chunk",
    "end_head",
    "reason_phrase",
    "request_head",
    "response_head",
    "start_request",
    "start_response",
]

#: Hop-by-hop fields (RFC 9110 §7.6.1) plus the legacy ones proxies also drop (nginx, Pingora).
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

#: Zero-length chunk ending a chunked body without trailers.
LAST_CHUNK: Final = b"0\r\n\r\n"

_EXTRA_REASONS: Final = {
    520: b"Unknown Error",
    521: b"Web Server Is Down",
    522: b"Connection Timed Out",
    523: b"Origin Is Unreachable",
    524: b"A Timeout Occurred",
    525: b"SSL Handshake Failed",
    526: b"Invalid SSL Certificate",
    530: b"Origin DNS Error",
}


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase, Cloudflare's for 52x/530, else empty."""
    extra = _EXTRA_REASONS.get(status)
    if extra is not None:
        return extra
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


# A head is built as one flat list of byte strings and joined once: joining each field first
# (``map(b": ".join, ...)``) allocates a bytes object per field; this way costs a third less compiled and
# the same interpreted (docs/performance.md, step 5). The header rewrites in pipeline/builtin/forwarding.py
# write their output straight into such a list, so no intermediate list of fields is built per request.


def start_request(method: bytes, target: bytes) -> list[bytes]:
    """The parts of ``METHOD target HTTP/1.1``; add fields with :func:`add_field`, end with :func:`end_head`."""
    if method == b"GET":
        # One part fewer for the usual method: every part costs the join, and a head of more than ten
        # parts makes ``bytes.join`` allocate its table of buffers (CPython's ``NB_STATIC_BUFFERS``).
        return [b"GET ", target, b" HTTP/1.1\r\n"]
    return [method, b" ", target, b" HTTP/1.1\r\n"]


def _status_lines() -> dict[int, tuple[bytes, bytes]]:
    lines = {}
    for status in [*HTTPStatus, *_EXTRA_REASONS]:
        phrase = reason_phrase(int(status))
        lines[int(status)] = (phrase, b"HTTP/1.1 %d %s\r\n" % (int(status), phrase))
    return lines


#: Status -> (standard reason phrase, HTTP/1.1 status line): the edge's status lines are nearly always
#: these, and formatting one costs more than the rest of the line's handling.
_STATUS_LINES: Final = _status_lines()
#: The same, indexed by status from 0 to 599 (None where unknown): a tuple index where the dict's lookup
#: boxes and hashes the status.
_STATUS_TABLE: Final = tuple(_STATUS_LINES.get(status) for status in range(600))


def start_response(status: int, reason: bytes | None = None, version: bytes = b"1.1") -> list[bytes]:
    """The parts of a status line (the standard reason phrase when ``reason`` is empty)."""
    if 0 <= status < 600 and version == b"1.1":
        known = _STATUS_TABLE[status]
        if known is not None and (not reason or reason == known[0]):
            return [known[1]]
    return [b"HTTP/%s %d %s\r\n" % (version, status, reason if reason else reason_phrase(status))]


def check_field(name: bytes, value: bytes) -> None:
    """Refuse a field that would break the head's framing: CR or LF would start a new field, or a new
    message after an empty line (request smuggling); NUL is cut short by some parsers.

    Raises:
        UnsafeHeaderValue: the field holds CR, LF or NUL (502: nothing is sent).
    """
    for part in (name, value):
        if part.find(b"\r") >= 0 or part.find(b"\n") >= 0 or part.find(b"\0") >= 0:  # find(): see proto/target.py
            raise UnsafeHeaderValue(
                f"refused to send header field {name.decode('latin-1')!r}: its name or value holds CR, LF or NUL"
            )


def add_field(parts: list[bytes], name: bytes, value: bytes) -> None:
    """Append one field, refusing CR, LF and NUL (:func:`check_field`)."""
    check_field(name, value)
    add_parsed_field(parts, name, value)


def add_parsed_field(parts: list[bytes], name: bytes, value: bytes) -> None:
    """Append one field *as parsed by* :mod:`originlock.proto.http1`, unchecked: llhttp in strict mode has
    already refused CR, LF, NUL and every other control byte in field names and values (tests/proto prove
    it), so checking again would cost a pass over every field of every message for nothing. Anything else
    (configuration, computed values) goes through :func:`add_field`."""
    parts.append(name)
    parts.append(b": ")
    parts.append(value)
    parts.append(b"\r\n")


def end_head(parts: list[bytes]) -> bytes:
    """The head: the parts and the empty line, joined."""
    parts.append(b"\r\n")
    return b"".join(parts)


def request_head(method: bytes, target: bytes, headers: Headers) -> bytes:
    """``METHOD target HTTP/1.1`` plus fields and the empty line."""
    parts = start_request(method, target)
    for name, value in headers:
        add_field(parts, name, value)
    return end_head(parts)


def response_head(status: int, headers: Headers, reason: bytes | None = None, version: bytes = b"1.1") -> bytes:
    """Status line plus fields and the empty line."""
    parts = start_response(status, reason, version)
    for name, value in headers:
        add_field(parts, name, value)
    return end_head(parts)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1); never call with empty data (that ends the body)."""
    return b"%x\r\n" % len(data) + data + b"\r\n"
