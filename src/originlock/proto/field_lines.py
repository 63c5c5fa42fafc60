"""The origin's field lines as one slice of the read, when they are spelled as the edge would write them;
and a response or request head's fields split from the bytes llhttp has checked (:func:`split_head`,
:func:`split_request_head`).

A response head whole in one read, whose every field line is ``name: value\\r\\n``, can be passed on by
copying runs of its lines (``pipeline/builtin/forwarding.py``) instead of writing four join parts per field;
:func:`field_lines` decides, from llhttp's fields and a few byte reads, whether that is so. Pure.
"""

from __future__ import annotations

from typing import Final

from originlock.proto.events import Headers
from originlock.proto.http1_common import _framing

__all__ = ["field_lines", "shim_function", "split_head", "split_request_head"]


def shim_function(name: str) -> object | None:
    """``proto/_h1shim.c``'s function ``name`` when the shim is built (wheels), else None: a source tree, or
    a wheel built without a C compiler (the parsers then read the fields through llhttp's callbacks)."""
    try:
        from originlock.proto import _h1shim  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(_h1shim, name)  # type: ignore[no-any-return]


def field_lines(wire: bytes, reason_length: int, headers: Headers) -> bytes:
    """The field lines of the response head at the start of ``wire``, as one slice, when every line is
    exactly ``name: value\\r\\n`` (what ``add_parsed_field`` writes); else ``b""``.

    ``headers`` are llhttp's fields of that head, so only the offsets need checking, not the bytes: llhttp
    (strict) allows no CR inside a reason phrase or a field value and no space before the colon, and a
    field name starts its line. So when the status line is ``HTTP/x.y DDD `` + reason + CRLF and, for each
    field in turn, the line that starts where the last one ended has ``": "`` right after the name and
    CRLF exactly ``len(value)`` bytes later, that line is the name, ``": "``, the value and CRLF: the value
    llhttp reported lies inside the line after the colon, the line holds no other CR, so a CR found where a
    value of that length ends is the line's own end, and the bytes between are the value itself. Any other
    spacing (``name:value``, two spaces, an empty value without its space) shifts an offset and gives
    ``b""``. The checks are a few byte reads per field, where serialising the fields costs four parts
    each in the head's join (docs/performance.md, issue 11, pooled3).
    """
    size = len(wire)
    start = 15 + reason_length  # "HTTP/1.1 200 " + reason + CRLF
    if size < start + 2 or wire[8] != 32 or wire[12] != 32 or wire[start - 2] != 13 or wire[start - 1] != 10:
        return b""
    at = start
    for name, value in headers:
        colon = at + len(name)  # the colon is there: llhttp ended this line's name at it
        end = colon + len(value) + 4
        if end + 2 > size or wire[colon + 1] != 32 or wire[end - 2] != 13 or wire[end - 1] != 10:
            return b""
        at = end
    if wire[at] != 13 or wire[at + 1] != 10:  # the empty line ends the head there
        return b""
    return wire[start:at]


#: What the Connection fields say (``_h1shim.c``'s enum): none, exactly one whose value is exactly
#: ``keep-alive`` or ``close`` (any case), or anything else, which only llhttp's token rules decide.
_NO_CONNECTION: Final = 0
_KEEP_ALIVE: Final = 1
_CLOSE: Final = 2
_ASK_LLHTTP: Final = 3


def _connection_fields(fields: Headers) -> tuple[int, int, int, bool]:
    """``(the Connection fields' verdict, Content-Length fields, Transfer-Encoding fields, the one
    Transfer-Encoding is exactly chunked)``: what llhttp's flags hold after these fields. Proxy-Connection is
    a Connection field to llhttp."""
    connection = _NO_CONNECTION
    lengths = codings = 0
    chunked = False
    for name, value in fields:
        lower = name.lower()
        if lower == b"connection" or lower == b"proxy-connection":
            verdict = _ASK_LLHTTP
            if lower == b"connection" and connection == _NO_CONNECTION:
                verdict = {b"keep-alive": _KEEP_ALIVE, b"close": _CLOSE}.get(value.lower(), _ASK_LLHTTP)
            connection = verdict
        elif lower == b"content-length":
            lengths += 1
        elif lower == b"transfer-encoding":
            codings += 1
            chunked = codings == 1 and value.lower() == b"chunked"
    return connection, lengths, codings, chunked


def _keeps_alive(version: bytes, connection: int, no_eof: bool) -> bool | None:
    """``llhttp_should_keep_alive()`` at the head's end (llhttp's api.c), or None when only llhttp can tell:
    HTTP/1.1 unless ``close``, HTTP/1.0 only with ``keep-alive``, and only when the message's end does not
    depend on the connection's (``no_eof``)."""
    if (version != b"1.1" and version != b"1.0") or connection == _ASK_LLHTTP:
        return None
    if connection == _CLOSE if version == b"1.1" else connection != _KEEP_ALIVE:
        return False
    return True if no_eof else None


def split_head(buf: bytes, start: int) -> tuple[Headers, bytes, bytes, int, int, str, bool | None] | None:
    """The fields of the response head llhttp has accepted at ``buf[start:]``: ``(fields, reason, raw,
    end, status, framing, keep_alive)``, or None when the bytes are not shaped as expected (the caller then
    reads the head through llhttp's callbacks). ``proto/_h1shim.c``'s ``split_head`` is this function in C
    (plus its shared objects), and this one is the tests' oracle for it: where the shim is not built, the
    parser takes the fields from llhttp's callbacks, which cost less than this does (docs/performance.md,
    "Issue 11, h1head").

    ``fields`` are llhttp's (name, value) pairs: llhttp (strict) ends every line with CRLF and allows no CR
    or LF inside one, ends a field name (a token) at its colon, and reports the value without the spaces and
    tabs after the colon but with those at its end. ``raw`` is :func:`field_lines`'s slice (b"" unless every
    line is spelled as the edge writes it), ``end`` the offset just after the head's empty line, ``status``
    the status code, ``framing`` ``http1_common._framing(fields)``, ``keep_alive`` what llhttp's
    ``should_keep_alive()`` answers at the head's end, or None when only llhttp can tell. CR and LF before
    the head are skipped, as llhttp skips them.
    """
    size = len(buf)
    at = start
    while at < size and buf[at] in (13, 10):
        at += 1
    eol = buf.find(b"\r\n", at)
    if eol < 0 or eol - at < 12 or not buf.startswith(b"HTTP/", at) or buf[at + 8] != 32 or b"\r" in buf[at:eol]:
        return None
    if not buf[at + 9 : at + 12].isdigit():
        return None
    status = int(buf[at + 9 : at + 12])
    version = buf[at + 5 : at + 8]
    canonical = eol - at > 12
    reason = b""
    if canonical:
        if buf[at + 12] != 32:
            return None
        reason = buf[at + 13 : eol]
    fields_at = at = eol + 2
    fields: Headers = []
    while not buf.startswith(b"\r\n", at):
        eol = buf.find(b"\r\n", at)
        colon = buf.find(b":", at, eol)
        if eol < 0 or colon <= at or b"\r" in buf[at:eol]:
            return None
        rest = buf[colon + 1 : eol]
        value = rest.lstrip(b" \t")
        if not rest or rest[0] != 32 or len(rest) - len(value) != 1:
            canonical = False
        fields.append((buf[at:colon], value))
        at = eol + 2
    connection, lengths, codings, chunked = _connection_fields(fields)
    no_eof = (
        status // 100 == 1
        or status in (204, 304)
        or (lengths == 1 and codings == 0)
        or (codings == 1 and chunked and lengths == 0)
    )
    raw = buf[fields_at:at] if canonical else b""
    return fields, reason, raw, at + 2, status, _framing(fields), _keeps_alive(version, connection, no_eof)


#: Field names the request parser acts on (any case); it also refuses spellings with an underscore.
_NOTABLE = (b"expect", b"content-length", b"transfer-encoding")


def split_request_head(
    buf: bytes, start: int
) -> tuple[bytes, bytes, bytes, Headers, int, int, bool, bool | None] | None:
    """The request head llhttp has accepted at ``buf[start:]``: ``(method, url, version, fields, size, end,
    notable, keep_alive)``, or None when it is not shaped as expected (HTTP/0.9, say: the parser then reads
    it through llhttp's callbacks). ``proto/_h1shim.c``'s ``split_request_head`` is this function in C, and
    this one is the tests' oracle for it (docs/performance.md, "Issue 11, reqhead").

    ``method`` is the request line up to its first space, ``url`` what llhttp's ``on_url`` reports (llhttp
    allows several spaces around it, none inside), ``version`` the ``x.y`` of the line's closing
    `` HTTP/x.y``; ``fields`` as :func:`split_head`'s; ``size`` the fields' part of ``RequestParser``'s head
    size (name and value lengths, plus 4 per field); ``end`` the offset just after the empty line;
    ``notable``: a field the parser acts on may be among them (Expect, Content-Length or Transfer-Encoding in
    any case, or a name with an underscore); ``keep_alive`` as :func:`split_head`'s (a request's end never
    depends on the connection's).
    """
    size = len(buf)
    at = start
    while at < size and buf[at] in (13, 10):
        at += 1
    eol = buf.find(b"\r\n", at)
    space = buf.find(b" ", at, eol)
    if eol < 0 or b"\r" in buf[at:eol] or space <= at or eol - space < 11 or buf[eol - 9 : eol - 3] != b" HTTP/":
        return None
    if buf[eol - 2] != 46:  # "."
        return None
    url_at = space
    while buf[url_at] == 32:
        url_at += 1
    url_end = buf.find(b" ", url_at, eol)
    if url_end < 0:  # only spaces before "HTTP/": llhttp refuses that line
        return None
    method, url, version = buf[at:space], buf[url_at:url_end], buf[eol - 3 : eol]
    at = eol + 2
    fields: Headers = []
    total = 0
    notable = False
    while not buf.startswith(b"\r\n", at):
        eol = buf.find(b"\r\n", at)
        colon = buf.find(b":", at, eol)
        if eol < 0 or colon <= at or b"\r" in buf[at:eol]:
            return None
        name, value = buf[at:colon], buf[colon + 1 : eol].lstrip(b" \t")
        fields.append((name, value))
        total += len(name) + len(value) + 4
        notable = notable or b"_" in name or name.lower() in _NOTABLE
        at = eol + 2
    connection = _connection_fields(fields)[0]
    return method, url, version, fields, total, at + 2, notable, _keeps_alive(version, connection, True)
