"""``field_lines``: the origin's field lines as one slice, only when spelled exactly as the edge writes them."""

from __future__ import annotations

import pytest

from originlock.proto.field_lines import field_lines

HEAD = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\n\r\nok"
FIELDS = [(b"Server", b"nginx"), (b"Content-Length", b"2")]


def test_the_usual_spelling_gives_the_lines() -> None:
    assert field_lines(HEAD, 2, FIELDS) == b"Server: nginx\r\nContent-Length: 2\r\n"
    assert field_lines(b"HTTP/1.1 204 \r\n\r\n", 0, []) == b""  # no fields: nothing to copy


@pytest.mark.parametrize(
    ("wire", "reason_length", "fields"),
    [
        (HEAD.replace(b"Server: ", b"Server:"), 2, FIELDS),  # the separator is not ": "
        (HEAD.replace(b"Server: ", b"Server:  "), 2, FIELDS),
        (HEAD.replace(b"Server: ", b"Server:\t"), 2, FIELDS),
        (HEAD, 3, FIELDS),  # a reason of another length than the line's
        (HEAD, 2, [(b"Server", b"ngin"), (b"Content-Length", b"2")]),  # a value shorter than its line
        (HEAD, 2, FIELDS[:1]),  # fewer fields than lines: no empty line where the head should end
        (HEAD[:30], 2, FIELDS),  # the head goes on past the read
        (b"HTTP/1.1 200\r\nServer: nginx\r\n\r\n", 0, FIELDS[:1]),  # no space before the empty reason
    ],
)
def test_any_other_spelling_gives_nothing(wire: bytes, reason_length: int, fields: list[tuple[bytes, bytes]]) -> None:
    assert field_lines(wire, reason_length, fields) == b""
