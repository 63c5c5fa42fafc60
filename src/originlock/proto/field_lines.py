"""The origin's field lines as one slice of the read, when they are spelled as the edge would write them;
and a response or request head's fields split from the bytes llhttp has checked (:func:`split_head`,
:func:`split_request_head`).

A response head whole in one read, whose every field line is ``name: value\\r\\n``, can be passed on by
copying runs of its lines (``pipeline/builtin/forwarding.py``) instead of writing four join parts per field;
:func:`field_lines` decides, from llhttp's fields and a few byte reads, whether that is so. Pure.
"""

from __future__ import annotations

from originlock.proto.events import Headers

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


def split_head(buf: bytes, start: int) -> tuple[Headers, bytes, bytes, int] | None:
    """The fields of the response head llhttp has accepted at ``buf[start:]``: ``(fields, reason, raw,
    end)``, or None when the bytes are not shaped as expected (the caller then reads the head through
    llhttp's callbacks). ``proto/_h1shim.c``'s ``split_head`` is this function in C (plus its shared
    objects), and this one is the tests' oracle for it: where the shim is not built, the parser takes the
    fields from llhttp's callbacks, which cost less than this does (docs/performance.md, "Issue 11, h1head").

    ``fields`` are llhttp's (name, value) pairs: llhttp (strict) ends every line with CRLF and allows no CR
    or LF inside one, ends a field name (a token) at its colon, and reports the value without the spaces and
    tabs after the colon but with those at its end. ``raw`` is :func:`field_lines`'s slice (b"" unless every
    line is spelled as the edge writes it), ``end`` the offset just after the head's empty line. CR and LF
    before the head are skipped, as llhttp skips them.
    """
    size = len(buf)
    at = start
    while at < size and buf[at] in (13, 10):
        at += 1
    eol = buf.find(b"\r\n", at)
    if eol < 0 or eol - at < 12 or not buf.startswith(b"HTTP/", at) or buf[at + 8] != 32 or b"\r" in buf[at:eol]:
        return None
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
    return fields, reason, buf[fields_at:at] if canonical else b"", at + 2


#: Field names the request parser acts on (any case); it also refuses spellings with an underscore.
_NOTABLE = (b"expect", b"content-length", b"transfer-encoding")


def split_request_head(buf: bytes, start: int) -> tuple[bytes, bytes, Headers, int, int, bool] | None:
    """The request head llhttp has accepted at ``buf[start:]``: ``(method, version, fields, size, end,
    notable)``, or None when it is not shaped as expected (HTTP/0.9, say: the parser then reads it through
    llhttp's callbacks). ``proto/_h1shim.c``'s ``split_request_head`` is this function in C, and this one is
    the tests' oracle for it (docs/performance.md, "Issue 11, reqhead").

    ``method`` is the request line up to its first space and ``version`` the ``x.y`` of its closing
    `` HTTP/x.y`` (the URL between them is llhttp's ``on_url``); ``fields`` as :func:`split_head`'s;
    ``size`` the fields' part of ``RequestParser``'s head size (name and value lengths, plus 4 per field);
    ``end`` the offset just after the empty line; ``notable``: a field the parser acts on may be among them
    (Expect, Content-Length or Transfer-Encoding in any case, or a name with an underscore).
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
    method, version = buf[at:space], buf[eol - 3 : eol]
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
    return method, version, fields, total, at + 2, notable
