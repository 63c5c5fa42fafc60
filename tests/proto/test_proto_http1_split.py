"""The response parser's two ways to the fields give the same events: llhttp's callbacks, and ``split_head``
on the bytes llhttp checked (the Python one always; the compiled shim's where it is built).

Many responses (interim 1xx first, HEAD, chunked with trailers, read until close, odd spacing, duplicate
and empty fields, bytes after the response) are cut into random reads and fed, exchange after exchange,
to parsers built each way: events, errors, ``raw_fields``, ``extra_data`` and ``done`` must be equal.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.proto.conftest import llhttp_accepts

from originlock.errors import OriginBadResponse
from originlock.proto.events import BodyReceived, Event, MessageEnded, ResponseReceived
from originlock.proto.field_lines import split_head
from originlock.proto.http1_common import _framing
from originlock.proto.http1_response import SPLIT_HEAD, ResponseParser, SplitHead, _read_head_again

#: The ways to the fields: the reference (callbacks) first.
SPLITS: list[SplitHead | None] = [None, split_head] + ([SPLIT_HEAD] if SPLIT_HEAD is not None else [])

_NAMES = [
    b"Server", b"Date", b"Content-Type", b"X-A", b"Set-Cookie", b"ETag", b"Vary", b"Connection", b"x-b",
    b"Connection", b"connection", b"Proxy-Connection",
]  # fmt: skip
#: Connection values: the split decides keep-alive for the exact ones, llhttp for the rest.
_VALUES = [
    b"nginx/1.22.1", b"", b"a b", b"1 \t ", b"text/plain; charset=utf-8", b"keep-alive", b"close", b"x:y",
    b"Keep-Alive", b"CLOSE", b"close, x", b"keep-alive ",
]  # fmt: skip
_SEPARATORS = [b": ", b":", b":  ", b":\t", b": \t", b" : "]  # the last one is refused (space before the colon)
_REASONS = [b" OK", b"", b" ", b"  Two", b" O\tK"]

fields = st.lists(
    st.tuples(st.sampled_from(_NAMES), st.sampled_from(_SEPARATORS), st.sampled_from(_VALUES)), max_size=6
)


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """One exchange's bytes from the origin (the method first)."""
    method = draw(st.sampled_from([b"GET", b"GET", b"HEAD"]))
    out = draw(st.sampled_from([b"", b"\r\n"]))
    for _ in range(draw(st.integers(0, 2))):
        out += b"HTTP/1.1 " + draw(st.sampled_from([b"100", b"103"])) + b" Early\r\n"
        out += b"".join(n + s + v + b"\r\n" for n, s, v in draw(fields)) + b"\r\n"
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    status = draw(st.sampled_from([b"200", b"200", b"204", b"304", b"404"]))
    out += b"HTTP/" + version + b" " + status + draw(st.sampled_from(_REASONS)) + b"\r\n"
    out += b"".join(n + s + v + b"\r\n" for n, s, v in draw(fields))
    framing = draw(st.sampled_from(["length", "chunked", "close", "none"]))
    body = draw(st.binary(max_size=12))
    if framing == "length":
        out += draw(st.sampled_from([b"Content-Length: ", b"content-length:"])) + b"%d" % len(body)
        out += draw(st.sampled_from([b"", b"", b" "])) + b"\r\n\r\n" + (b"" if method == b"HEAD" else body)
    elif framing == "chunked":
        out += draw(st.sampled_from([b"Transfer-Encoding: chunked", b"transfer-encoding: Chunked"])) + b"\r\n\r\n"
        if method != b"HEAD":
            out += (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n"
            out += b"".join(n + b": " + v + b"\r\n" for n, _, v in draw(fields)) + b"\r\n"  # trailers
    else:
        out += b"\r\n" + (body if framing == "close" and method != b"HEAD" else b"")
    out += draw(st.sampled_from([b"", b"", b"\r\n", b"H", b"HTTP/1.1 2", b"HTTP/1.1 200 ", b"HTTP/1.1 204 OK\r\n\r\n"]))
    return method, out


@dataclass
class Outcome:
    events: list[tuple[object, ...]]
    error: str
    done: bool
    extra: bool


def _describe(event: Event) -> tuple[object, ...]:
    if isinstance(event, ResponseReceived):
        raw = event.raw_fields if event.raw_of is event.headers or not event.raw_fields else b"(stale)"
        return ("head", event.status, event.reason, event.version, event.headers, event.keep_alive, event.body, raw)
    if isinstance(event, BodyReceived):
        return ("body", bytes(event.data))
    assert isinstance(event, MessageEnded)
    return ("end",)


def run(split: SplitHead | None, exchanges: list[tuple[bytes, bytes]], cuts: list[int]) -> list[Outcome]:
    """Feed every exchange in turn (cut where ``cuts`` say), while the connection could carry the next."""
    parser = ResponseParser(split=split)
    outcomes = []
    for method, data in exchanges:
        parser.start(method)
        events: list[Event] = []
        error = ""
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if a < b and b <= len(data)]
        try:
            for piece in pieces:
                if parser.done:
                    break
                events += parser.feed(piece)
            if not parser.done:
                events += parser.feed_eof()
        except OriginBadResponse as exc:
            error = str(exc)
        outcomes.append(Outcome([_describe(e) for e in events], error, parser.done, parser.extra_data))
        if error or not parser.done or parser.extra_data:
            break
    return outcomes


@settings(max_examples=600, deadline=None)
@given(st.lists(responses(), min_size=1, max_size=3), st.lists(st.integers(1, 200), max_size=4))
def test_every_way_to_the_fields_gives_the_same_events(exchanges: list[tuple[bytes, bytes]], cuts: list[int]) -> None:
    cuts = sorted(set(cuts))
    reference = run(None, exchanges, cuts)
    for split in SPLITS[1:]:
        assert run(split, exchanges, cuts) == reference


@pytest.mark.parametrize("split", SPLITS)
def test_nginx_response_in_one_read(split: SplitHead | None) -> None:
    wire = (
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
    )
    parser = ResponseParser(split=split)
    for _ in range(2):  # the second time the shim hands out its shared tuples: the same fields
        parser.start(b"GET")
        head, body, end = parser.feed(wire)
        assert isinstance(head, ResponseReceived) and head.reason == b"OK" and head.version == b"1.1"
        assert head.headers == [
            (b"Server", b"nginx/1.22.1"),
            (b"Date", b"Mon, 01 Jan 2026 00:00:00 GMT"),
            (b"Content-Type", b"text/plain"),
            (b"Content-Length", b"2"),
            (b"Connection", b"keep-alive"),
        ]
        assert head.raw_fields == wire[17 : wire.index(b"\r\n\r\n") + 2] and head.raw_of is head.headers
        assert body == BodyReceived(b"ok") and end is not None and parser.done and not parser.extra_data


def test_a_head_the_split_refuses_is_read_through_the_callbacks() -> None:
    wire = b"HTTP/1.1 200 OK\r\nA:  x \r\nB:\r\nContent-Length: 0\r\n\r\n"
    reference = run(None, [(b"GET", wire)], [9])
    assert reference[0].events[0][4] == [(b"A", b"x "), (b"B", b""), (b"Content-Length", b"0")]
    assert run(lambda buf, start: None, [(b"GET", wire)], [9]) == reference
    assert _read_head_again(b"\r\n" + wire, 0) == ([(b"A", b"x "), (b"B", b""), (b"Content-Length", b"0")], b"OK", 52)
    upgrade = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
    assert _read_head_again(upgrade + b"tail", 0)[0] == [(b"Upgrade", b"websocket"), (b"Connection", b"upgrade")]


@pytest.mark.skipif(SPLIT_HEAD is None, reason="the compiled shim (proto/_h1shim.c) is not built in this tree")
@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"a", b"B-c", b"\r\n", b"\r", b"\n", b":", b" ", b"\t", b"\x80", b"HTTP/1.1 "]), max_size=20
    ),
    st.integers(0, 4),
)
def test_the_shim_splits_as_the_python_function(pieces: list[bytes], start: int) -> None:
    """Equal on every head llhttp accepts; on any other bytes the shim only has to stay inside them."""
    assert SPLIT_HEAD is not None
    for buf in (b"HTTP/1.1 200 OK\r\n" + b"".join(pieces) + b"\r\n\r\n", b"".join(pieces)):
        ours = SPLIT_HEAD(buf, start)
        if llhttp_accepts(buf[start:], httptools.HttpResponseParser):
            assert ours == split_head(buf, start)


#: Heads whose framing and keep-alive the split reads as llhttp does (or leaves to llhttp: None).
_HEADS = [
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0 \r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nConnection: Keep-Alive\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nConnection: close, x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: KEEP-ALIVE\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/2.0 200 OK\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
]


def _llhttp_at_head_end(head: bytes) -> tuple[int, bool]:
    """llhttp's status code and ``should_keep_alive()`` in ``on_headers_complete``, where the parser asks."""
    seen: list[tuple[int, bool]] = []

    class Callbacks:
        def on_headers_complete(self) -> None:
            seen.append((parser.get_status_code(), bool(parser.should_keep_alive())))

    parser = httptools.HttpResponseParser(Callbacks())
    with suppress(httptools.HttpParserUpgrade):
        parser.feed_data(head)
    return seen[0]


@pytest.mark.parametrize("split", SPLITS[1:])
@pytest.mark.parametrize("head", _HEADS)
def test_the_split_gives_the_status_framing_and_keep_alive_llhttp_would(split: SplitHead, head: bytes) -> None:
    found = split(head, 0)
    assert found is not None
    fields, _, _, end, status, framing, keep_alive = found
    assert end == len(head) and framing == _framing(fields)
    assert (status, keep_alive if keep_alive is not None else _llhttp_at_head_end(head)[1]) == _llhttp_at_head_end(head)
    if head == _HEADS[0]:  # nginx's usual head: llhttp is not asked
        assert (keep_alive, framing) == (True, "length")
