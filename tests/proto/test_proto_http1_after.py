"""What the response parser does with bytes after the response's head: trailers, and the start of another
response after the response."""

from __future__ import annotations

import pytest

from originlock.proto.events import ResponseReceived
from originlock.proto.field_lines import split_head
from originlock.proto.http1_response import SPLIT_HEAD, ResponseParser, SplitHead

#: Every way to the fields (tests/proto/test_proto_http1_split.py): llhttp's callbacks, the Python split,
#: the compiled shim's where it is built.
SPLITS: list[SplitHead | None] = [None, split_head] + ([SPLIT_HEAD] if SPLIT_HEAD is not None else [])


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("extra", [b"H", b"HTTP/1.", b"HTTP/1.1 2", b"HTTP/1.1 200"])
def test_a_partial_response_after_the_response_is_extra_data(split: SplitHead | None, extra: bytes) -> None:
    """Bytes that only begin another response (no reason phrase yet) were not noticed: the connection went
    back to the pool with llhttp inside a message, and the next exchange's response was read as its rest."""
    parser = ResponseParser(split=split)
    parser.start(b"GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + extra)
    assert parser.done and parser.extra_data


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("extra", [b"", b"\r\n", b"\r\n\r\n"])
def test_line_ends_after_the_response_are_not_extra_data(split: SplitHead | None, extra: bytes) -> None:
    """llhttp skips CR and LF before a message (RFC 9112 §2.2: at least one empty line may precede it)."""
    parser = ResponseParser(split=split)
    parser.start(b"GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + extra)
    assert parser.done and not parser.extra_data


@pytest.mark.parametrize("split", SPLITS)
def test_trailers_are_not_fields_of_the_response(split: SplitHead | None) -> None:
    """A chunked response's trailers were appended, through on_header, to the fields of the response already
    handed out (in the same read: before the head was written to the visitor)."""
    parser = ResponseParser(split=split)
    parser.start(b"GET")
    head, *_ = parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nSet-Cookie: x\r\n\r\n")
    assert isinstance(head, ResponseReceived) and head.headers == [(b"Transfer-Encoding", b"chunked")]
    assert parser.done and not parser.extra_data
    parser.start(b"GET")  # and not the next response's either
    head, _ = parser.feed(b"HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n")
    assert isinstance(head, ResponseReceived) and head.headers == [(b"Server", b"s")]
