"""An HTTP/2 request's header list as the edge's :class:`RequestReceived`, and a response's fields for HPACK.

``h2`` has already checked what RFC 9113 §8.2-8.3 makes a malformed request (pseudo-header fields present,
known, unrepeated and first; no upper-case names; no CR, LF or NUL, no surrounding whitespace; no
connection-specific fields; TE only ``trailers``; Host and ``:authority`` equal; a numeric Content-Length)
and the server turns its refusal into a stream error. :func:`request_from_fields` then applies what the
HTTP/1 parser applies (``proto/http1.py``), raising the same :class:`~originlock.errors.DownstreamError`
so that the edge answers the same status over either protocol: a method that is not a token, a ``:path``
that is not origin-form or does not normalise (``proto/target.py``), bytes in the target or in field values
that HTTP/1 could not carry (llhttp refuses every control byte but tab), CONNECT, the URL and head size
limits (414, 431), field names whose underscores read as a field the edge interprets, an unsupported Expect.
"""

from __future__ import annotations

import re
from typing import Final

from originlock.errors import HeadersTooLarge, MalformedRequest, UnsafeHeaderValue, UriTooLong
from originlock.proto.events import Headers, RequestReceived, lower_name
from originlock.proto.http1 import _LINE_OVERHEAD, _UNDERSCORED, Limits
from originlock.proto.target import normalize_target

__all__ = ["CONNECTION_SPECIFIC", "StreamMalformed", "request_from_fields", "response_fields"]

#: RFC 9113 §8.2.2: fields that only mean something on an HTTP/1 connection. Dropped from responses (the
#: edge builds them as for HTTP/1; an HTTP/2 client must treat them as malformed), refused in requests
#: by ``h2``. ``te`` is dropped from responses too (it is a request field).
CONNECTION_SPECIFIC: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"}
)
#: RFC 9110 §5.6.2 token: what a method may be made of.
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Bytes a request-target may not hold in any form (HTTP/1 cannot carry them in its request line): control
#: bytes, space, DEL. The path is normalised anyway; this is for the query, which is left as received.
_TARGET_BAD: Final = re.compile(rb"[\x00-\x20\x7f]")
#: Control bytes other than tab in a field value: ``h2`` refuses CR, LF and NUL only, llhttp all of them.
_VALUE_BAD: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS: Final = {status: b"%d" % status for status in range(100, 600)}


class StreamMalformed(ValueError):
    """A request RFC 9113 calls malformed that ``h2`` lets through: a stream error (RST_STREAM)."""


def request_from_fields(fields: Headers, ended: bool, limits: Limits) -> RequestReceived:
    """The request in ``fields`` (pseudo-header fields first, as ``h2`` checked); ``ended``: END_STREAM
    came with the header block.

    Returns a :class:`RequestReceived` with version ``b"2"``, an origin-form ``target`` from ``:path``
    (normalised), the regular fields with a Host field (``:authority``'s value, first, when the request had
    no Host field), ``keep_alive`` True, ``body`` ``none`` (``ended``), ``length`` (Content-Length) or
    ``chunked`` (neither: the body's end is END_STREAM), and ``expect_continue`` as HTTP/1 sets it.

    Raises:
        StreamMalformed: a Content-Length above 0 on a request ended by its header block.
        MalformedRequest: 400, see the module docstring.
        UriTooLong: ``:path`` longer than ``limits.max_url_bytes`` (414).
        HeadersTooLarge: the head, counted as for HTTP/1, above ``limits.max_request_head_bytes`` (431).
    """
    method = path = authority = b""
    headers: Headers = []
    has_host = False
    length: bytes | None = None
    expect = False
    size = 0
    for name, value in fields:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            continue  # :scheme: the edge knows its own
        size += len(name) + len(value) + _LINE_OVERHEAD
        lower = lower_name(name)  # already lower-case (h2 refuses others); the cached object hashes once
        if lower == b"host":
            has_host = True
        elif lower == b"content-length":
            length = value
        elif lower == b"expect":
            if value.lower() != b"100-continue":
                raise MalformedRequest("unsupported Expect value")
            expect = True
        elif lower in _UNDERSCORED:
            raise MalformedRequest(f"header field name {name.decode('latin-1')!r} reads as one the edge interprets")
        if _VALUE_BAD.search(value) is not None:
            raise MalformedRequest(f"header field {name.decode('latin-1')!r} holds a control character")
        headers.append((lower, value))
    if method == b"CONNECT":
        raise MalformedRequest("CONNECT is not supported")
    if _TOKEN.fullmatch(method) is None:
        raise MalformedRequest("the method is not a token")
    if len(path) > limits.max_url_bytes:
        raise UriTooLong()
    if size + len(path) > limits.max_request_head_bytes:
        raise HeadersTooLarge()
    if path[:1] != b"/":
        raise MalformedRequest("the :path is not in origin-form (the asterisk form is not supported)")
    if _TARGET_BAD.search(path) is not None:
        raise MalformedRequest("the :path holds a space or a control character")
    if b"@" in authority or _TARGET_BAD.search(authority) is not None:
        raise MalformedRequest("the :authority holds userinfo, a space or a control character")
    if authority and not has_host:
        headers.insert(0, (b"host", authority))
    if ended:
        if length is not None and length != b"0":
            raise StreamMalformed("Content-Length announces a body, and END_STREAM came with the header block")
        body = "none"
    else:
        body = "length" if length is not None else "chunked"
    return RequestReceived(method, normalize_target(path), b"2", headers, True, body, expect)


def response_fields(status: int, headers: Headers) -> Headers:
    """``:status`` then ``headers`` with lower-case names, without connection-specific fields (nor those a
    Connection field names).

    Raises:
        UnsafeHeaderValue: a name that is not a token or a value holding CR, LF or NUL (502: nothing is
            sent for the stream), or the
            status is not three digits.
    """
    code = _STATUS.get(status)
    if code is None:
        raise UnsafeHeaderValue(f"refused to send status {status}")
    named: set[bytes] = set()
    for name, value in headers:
        if lower_name(name) == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    fields: Headers = [(b":status", code)]
    for name, value in headers:
        lower = lower_name(name)
        if lower in CONNECTION_SPECIFIC or lower in named:
            continue
        if (
            _TOKEN.fullmatch(lower) is None
            or value.find(b"\r") >= 0
            or value.find(b"\n") >= 0
            or value.find(b"\0") >= 0
        ):
            raise UnsafeHeaderValue(f"refused to send header field {name.decode('latin-1')!r}")
        fields.append((lower, value))
    return fields
