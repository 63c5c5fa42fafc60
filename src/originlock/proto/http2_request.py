"""An HTTP/2 request's header list as the edge's :class:`RequestReceived`, and a response's fields for HPACK.

:func:`request_from_fields` checks, in one pass over the fields, what RFC 9113 §8.2-8.3 makes a malformed
request (pseudo-header fields present, known, unrepeated and first; no upper-case names; no CR, LF or NUL,
no surrounding whitespace; no connection-specific fields; TE only ``trailers``; Host and ``:authority``
equal), raising :class:`StreamMalformed` (the server resets the stream; ``h2`` checks that Content-Length
is a number). It also applies what the HTTP/1 parser applies (``proto/http1.py``), raising the same
:class:`~originlock.errors.DownstreamError` so that the edge answers the same status over either protocol:
a method that is not a token, a ``:path`` that is not origin-form or does not normalise
(``proto/target.py``), bytes in the target or in field values that HTTP/1 could not carry (llhttp refuses
every control byte but tab), CONNECT, the URL and head size limits (414, 431), field names whose
underscores read as a field the edge interprets, an unsupported Expect.

A codec that already checked the bytes says so with ``checked`` (the compiled shim, ``proto/_ngshim.c``, looks
at each byte as nghttp2 hands it the field, at a fraction of a regular expression's cost): with
:data:`FIELDS_CHECKED` the per-field byte checks are skipped, with :data:`PSEUDO_CHECKED` those of ``:path``
and ``:authority``. The bits only ever skip checks that passed; a block without them is checked here, and
every refusal (and its reason) comes from this module either way.
"""

from __future__ import annotations

import re
from typing import Final

from originlock.errors import HeadersTooLarge, MalformedRequest, UnsafeHeaderValue, UriTooLong
from originlock.proto.events import Headers, RequestReceived, lower_name
from originlock.proto.http1 import _LINE_OVERHEAD, _UNDERSCORED, Limits
from originlock.proto.target import normalize_target

__all__ = [
    "CONNECTION_SPECIFIC",
    "FIELDS_CHECKED",
    "PSEUDO_CHECKED",
    "StreamMalformed",
    "request_from_fields",
    "response_fields",
]

#: ``checked`` bit: every regular field name is a lower-case token, and no value holds a control byte other
#: than tab, DEL, or space or tab at either end.
FIELDS_CHECKED: Final = 0x100
#: ``checked`` bit: no pseudo-header field value holds a space, a control byte or DEL.
PSEUDO_CHECKED: Final = 0x200

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
#: Methods known to be tokens (the regular expression is for the others).
_METHODS: Final = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE"})


class StreamMalformed(ValueError):
    """A request RFC 9113 §8.1.1 calls malformed: a stream error (RST_STREAM PROTOCOL_ERROR), not a 4xx."""


#: A field name as HTTP/2 carries it: a token, lower-case (RFC 9113 §8.2.1).
_NAME: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_CR_LF_NUL: Final = re.compile(rb"[\r\n\x00]")
#: Names the request pass treats apart, each with what it does; any other valid name is just kept.
_HOST, _LENGTH, _COOKIE, _TE, _EXPECT, _FORBIDDEN, _UNDERSCORE = range(7)
_SPECIAL: Final = {
    b"host": _HOST,
    b"content-length": _LENGTH,
    b"cookie": _COOKIE,
    b"te": _TE,
    b"expect": _EXPECT,
    **dict.fromkeys(CONNECTION_SPECIFIC - {b"te"}, _FORBIDDEN),
    **dict.fromkeys(_UNDERSCORED, _UNDERSCORE),
}
#: Field names already seen to be valid (lower-case tokens, not special), in requests and responses: a
#: deployment sees a few dozen, and checking one again costs a regular expression per field. Bounded.
_PLAIN_NAMES: Final[set[bytes]] = set()
_MAX_NAMES: Final = 4096


def _plain(name: bytes) -> bool:
    """Whether ``name`` is a lower-case token that needs nothing more than keeping (remembered)."""
    if _NAME.fullmatch(name) is None or name in _SPECIAL:
        return False
    if len(_PLAIN_NAMES) < _MAX_NAMES:
        _PLAIN_NAMES.add(name)
    return True


def request_from_fields(fields: Headers, ended: bool, limits: Limits, checked: int = 0) -> RequestReceived:
    """The request in the decoded header block ``fields``; ``ended``: END_STREAM came with it; ``checked``:
    the codec's :data:`FIELDS_CHECKED` and :data:`PSEUDO_CHECKED` bits (the module docstring).

    One pass over the fields does both jobs: RFC 9113's rules for a request (``h2``'s own checks are off:
    this pass was needed anyway, and ``h2``'s chain of generators cost more than it) and the HTTP/1
    parser's (the module docstring). Cookie fields are joined into one (RFC 9113 §8.2.3), for HTTP/1.

    Returns a :class:`RequestReceived` with version ``b"2"``, an origin-form ``target`` from ``:path``
    (normalised), the regular fields with a Host field (``:authority``'s value, first, when the request had
    no Host field), ``keep_alive`` True, ``body`` ``none`` (``ended``), ``length`` (Content-Length) or
    ``chunked`` (neither: the body's end is END_STREAM), and ``expect_continue`` as HTTP/1 sets it.

    Raises:
        StreamMalformed: pseudo-header fields missing, repeated, unknown or after a regular field; a name
            not a lower-case token; CR, LF or NUL in a value, or whitespace around it; a connection-specific
            field; TE other than ``trailers``; no Host nor ``:authority``, several Host fields, or a Host
            that differs from ``:authority``; a Content-Length above 0 on a request ended by its header block.
        MalformedRequest: 400, see the module docstring.
        UriTooLong: ``:path`` longer than ``limits.max_url_bytes`` (414).
        HeadersTooLarge: the head, counted as for HTTP/1, above ``limits.max_request_head_bytes`` (431).
    """
    method: bytes | None = None
    path: bytes | None = None
    authority: bytes | None = None
    scheme = False
    headers: Headers = []
    host: bytes | None = None
    length: bytes | None = None
    cookies: list[bytes] = []
    expect = False
    size = 0
    fields_checked = checked & FIELDS_CHECKED != 0
    for name, value in fields:
        if fields_checked:
            # Lower-case tokens or pseudo-header names, values without forbidden bytes: what is left is
            # whether the name is one the pass treats apart.
            if name[:1] != b":" and name not in _SPECIAL:
                size += len(name) + len(value) + _LINE_OVERHEAD
                headers.append((name, value))
                continue
        else:
            if value and (value[0] in (32, 9) or value[-1] in (32, 9)):
                raise StreamMalformed(f"field {name!r} has whitespace around its value")
            if _VALUE_BAD.search(value) is not None:
                if _CR_LF_NUL.search(value) is not None:
                    raise StreamMalformed(f"field {name!r} holds CR, LF or NUL")
                raise MalformedRequest(f"header field {name.decode('latin-1')!r} holds a control character")
            if name in _PLAIN_NAMES or _plain(name):
                size += len(name) + len(value) + _LINE_OVERHEAD
                headers.append((name, value))
                continue
        if name[:1] == b":":
            if headers or cookies or host is not None:
                raise StreamMalformed(f"pseudo-header field {name!r} after a regular field")
            # The request pseudo-header fields (RFC 9113 §8.3.1; ``:protocol``, RFC 8441, is not offered), in
            # locals: four compares cost less than a set, a dict and four lookups per request.
            if name == b":method" and method is None:
                method = value
            elif name == b":path" and path is None:
                path = value
            elif name == b":authority" and authority is None:
                authority = value
            elif name == b":scheme" and not scheme:
                scheme = True
            else:
                raise StreamMalformed(f"unknown or repeated pseudo-header field {name!r}")
            continue
        kind = _SPECIAL.get(name)
        if kind is None:
            raise StreamMalformed(f"field name {name!r} is not a lower-case token")
        size += len(name) + len(value) + _LINE_OVERHEAD
        if kind == _COOKIE:
            cookies.append(value)
            continue
        if kind == _HOST:
            if host is not None:
                raise StreamMalformed("more than one Host field")
            host = value
        elif kind == _LENGTH:
            length = value
        elif kind == _FORBIDDEN:
            raise StreamMalformed(f"connection-specific field {name!r}")
        elif kind == _TE:
            if value != b"trailers":
                raise StreamMalformed("TE other than trailers")
        elif kind == _EXPECT:
            if value.lower() != b"100-continue":
                raise MalformedRequest("unsupported Expect value")
            expect = True
        else:
            raise MalformedRequest(f"header field name {name.decode('latin-1')!r} reads as one the edge interprets")
        headers.append((name, value))
    # PSEUDO_CHECKED covers ``:path`` and ``:authority``, not an authority taken from Host.
    target_checked = checked & PSEUDO_CHECKED != 0 and authority is not None
    if method == b"CONNECT":
        raise MalformedRequest("CONNECT is not supported")
    if not method or not path or not scheme:
        raise StreamMalformed("a request needs :method, :scheme and :path")
    if authority is None:
        if host is None:
            raise StreamMalformed("neither :authority nor Host")
        authority = host
    elif host is None:
        headers.insert(0, (b"host", authority))
    elif host != authority:
        raise StreamMalformed("Host differs from :authority")
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    if method not in _METHODS and _TOKEN.fullmatch(method) is None:
        raise MalformedRequest("the method is not a token")
    if len(path) > limits.max_url_bytes:
        raise UriTooLong()
    if size + len(path) > limits.max_request_head_bytes:
        raise HeadersTooLarge()
    if path[:1] != b"/":
        raise MalformedRequest("the :path is not in origin-form (the asterisk form is not supported)")
    if not target_checked and _TARGET_BAD.search(path) is not None:
        raise MalformedRequest("the :path holds a space or a control character")
    # ``find``, not ``in``: bytes' ``in`` first tries its operand as an int (an exception raised and cleared).
    if not authority or authority.find(b"@") >= 0 or (not target_checked and _TARGET_BAD.search(authority)):
        raise MalformedRequest("the :authority is empty or holds userinfo, a space or a control character")
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
            sent for the stream), or a status that is not three digits.
    """
    code = _STATUS.get(status)
    if code is None:
        raise UnsafeHeaderValue(f"refused to send status {status}")
    fields: Headers = [(b":status", code)]
    named: set[bytes] | None = None
    for name, value in headers:
        lower = lower_name(name)
        if lower in CONNECTION_SPECIFIC:
            if lower == b"connection":
                named = (named or set()) | {token.strip().lower() for token in value.split(b",")}
            continue
        if (lower not in _PLAIN_NAMES and not _plain(lower) and _TOKEN.fullmatch(lower) is None) or (
            _CR_LF_NUL.search(value) is not None
        ):
            raise UnsafeHeaderValue(f"refused to send header field {name.decode('latin-1')!r}")
        fields.append((lower, value))
    if named:
        fields = [fields[0], *(field for field in fields[1:] if field[0] not in named)]
    return fields
