"""The origin's field lines as one slice of the read, when they are spelled as the edge would write them.

A response head whole in one read, whose every field line is ``name: value\\r\\n``, can be passed on by
copying runs of its lines (``pipeline/builtin/forwarding.py``) instead of writing four join parts per field;
:func:`field_lines` decides, from llhttp's fields and a few byte reads, whether that is so. Pure.
"""

from __future__ import annotations

from originlock.proto.events import Headers

__all__ = ["field_lines"]


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
