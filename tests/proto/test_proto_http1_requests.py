"""The request parser's two ways to the fields give the same events: llhttp's callbacks, and
``split_request_head`` on the bytes llhttp checked (the Python one always; the compiled shim's where it is
built), with the change to the callbacks at a chunked body or a head the split does not take.

Random pipelined requests (leading CRLF, methods, targets in every form, 1.0/1.1/0.9, fields with odd
spacing, refused spellings, obs-fold, Expect, Content-Length with a space or a tab after it, chunked
bodies with extensions and trailers, Connection: close, Upgrade, long URLs and heads under small limits)
are cut into random reads and fed to a parser built each way: events, errors (type and text), the events
completed before an error and the upgrade's tail must be equal.
"""

from __future__ import annotations

from contextlib import suppress

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.proto.conftest import llhttp_accepts

from originlock.errors import DownstreamError, UriTooLong
from originlock.proto.events import BodyReceived, Event, MessageEnded, RequestReceived
from originlock.proto.field_lines import split_request_head
from originlock.proto.http1 import SPLIT_REQUEST_HEAD, Limits, RequestParser, SplitRequestHead

#: The ways to the fields: the reference (callbacks) first.
SPLITS: list[SplitRequestHead | None] = [None, split_request_head] + (
    [SPLIT_REQUEST_HEAD] if SPLIT_REQUEST_HEAD is not None else []
)

_NAMES = [
    b"Host", b"host", b"User-Agent", b"Accept", b"X-A", b"Cookie", b"x-b", b"Expect", b"Content_Length",
    b"X_Forwarded_For", b"Sec-Fetch-Mode", b"Connection", b"connection", b"Proxy-Connection",
]  # fmt: skip
_VALUES = [
    b"a.test", b"", b"a b", b"1 \t ", b"100-continue", b"close", b"keep-alive", b"x:y", b"z" * 200,
    b"Keep-Alive", b"CLOSE", b"close, x", b"keep-alive ",
    b"a\nb", b"a\rb",  # refused by llhttp
]  # fmt: skip
_SEPARATORS = [b": ", b":", b":  ", b":\t", b": \t", b" : "]  # the last one is refused (space before the colon)
_METHODS = [b"GET", b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"M-SEARCH", b"CONNECT", b"get"]
_TARGETS = [
    b"/", b"/a?b=1", b"/a/../b", b"http://h.test/x", b"HTTPS://h.test", b"*", b"/" + b"u" * 300, b"h.test:443",
    b"/a#f",
]  # fmt: skip
_VERSIONS = [b" HTTP/1.1", b" HTTP/1.1", b" HTTP/1.0", b"", b" HTTP/2.0"]


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """One request's bytes (a few of them refused on purpose)."""
    out = draw(st.sampled_from([b"", b"", b"\r\n", b"\n"]))
    out += draw(st.sampled_from(_METHODS)) + draw(st.sampled_from([b" ", b" ", b"  "]))
    out += draw(st.sampled_from(_TARGETS)) + draw(st.sampled_from([b"", b"", b" "]))
    out += draw(st.sampled_from(_VERSIONS)) + b"\r\n"
    for name, separator, value in draw(
        st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_SEPARATORS), st.sampled_from(_VALUES)), max_size=6)
    ):
        out += name + separator + value + b"\r\n"
    if draw(st.integers(0, 30)) == 0:
        out += b" folded\r\n"  # obs-fold: refused by llhttp
    if draw(st.integers(0, 8)) == 0:
        out += b"Upgrade: websocket\r\nConnection: upgrade\r\n"
    body = draw(st.binary(max_size=10))
    framing = draw(st.sampled_from(["none", "none", "length", "chunked", "gzip"]))
    if framing == "length":
        out += b"Content-Length: %d" % len(body) + draw(st.sampled_from([b"", b"", b" ", b"\t"])) + b"\r\n\r\n" + body
    elif framing == "chunked":
        out += b"Transfer-Encoding: chunked\r\n\r\n"
        if body:
            out += b"%x" % len(body) + draw(st.sampled_from([b"", b";ext=1"])) + b"\r\n" + body + b"\r\n"
        out += b"0\r\n" + draw(st.sampled_from([b"", b"Host: trailer.test\r\n", b"X-T: 1\r\n"])) + b"\r\n"
    elif framing == "gzip":
        out += b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    else:
        out += b"\r\n"
    return out


def _describe(event: Event) -> tuple[object, ...]:
    if isinstance(event, RequestReceived):
        return ("head", *event._fields())
    if isinstance(event, BodyReceived):
        return ("body", bytes(event.data))
    assert isinstance(event, MessageEnded)
    return ("end",)


def run(split: SplitRequestHead | None, data: bytes, cuts: list[int], limits: Limits) -> tuple[object, ...]:
    """Feed ``data`` cut where ``cuts`` say; what a connection would see."""
    parser = RequestParser(limits, split=split)
    events: list[tuple[object, ...]] = []
    error = ""
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if a < b <= len(data)]
    for piece in pieces:
        try:
            events += [_describe(e) for e in parser.feed(piece)]
        except DownstreamError as exc:
            error = f"{type(exc).__name__}: {exc}"
            events += [_describe(e) for e in parser.complete_events()]
            break
    upgrade = _describe(parser.upgrade_request) if parser.upgrade_request is not None else None
    return events, error, parser.upgrade_tail, upgrade


_LIMITS = [Limits(), Limits(max_url_bytes=256, max_request_head_bytes=400)]


@settings(max_examples=800, deadline=None)
@given(
    st.lists(requests(), min_size=1, max_size=4),
    st.lists(st.integers(1, 400), max_size=5),
    st.sampled_from(_LIMITS),
)
def test_every_way_to_the_fields_gives_the_same_events(pipelined: list[bytes], cuts: list[int], limits: Limits) -> None:
    data = b"".join(pipelined)
    cuts = sorted(set(cuts))
    reference = run(None, data, cuts, limits)
    for split in SPLITS[1:]:
        assert run(split, data, cuts, limits) == reference


@pytest.mark.parametrize("split", SPLITS)
def test_a_browser_request_and_its_shared_fields(split: SplitRequestHead | None) -> None:
    wire = (
        b"GET /index.html HTTP/1.1\r\nHost: a.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n"
        b"Accept-Language: en\r\nAccept-Encoding: gzip, br\r\nConnection: keep-alive\r\nCookie: s=1\r\n\r\n"
    )
    parser = RequestParser(split=split)
    for _ in range(2):  # the second time the shim hands out its shared tuples: the same fields
        head, end = parser.feed(wire)
        assert isinstance(head, RequestReceived) and isinstance(end, MessageEnded)
        assert (head.method, head.target, head.version, head.keep_alive, head.body) == (
            b"GET",
            b"/index.html",
            b"1.1",
            True,
            "none",
        )
        assert head.headers[0] == (b"Host", b"a.test") and head.headers[-1] == (b"Cookie", b"s=1")
        assert len(head.headers) == 7


def test_a_chunked_request_changes_the_connection_to_the_callbacks() -> None:
    """After a chunked body the next head's start in the read is not known: the parser reads it (and every
    later one) through llhttp's callbacks, from the chunked request's own head."""
    first = b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n"
    chunked = b"POST /b HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n"
    last = b"GET /c HTTP/1.1\r\nHost: a.test\r\nX: y\r\n\r\n"
    parser = RequestParser(split=split_request_head)
    events = parser.feed(first + chunked[:20]) + parser.feed(chunked[20:] + last)
    heads = [e for e in events if isinstance(e, RequestReceived)]
    assert [h.target for h in heads] == [b"/a", b"/b", b"/c"] and heads[1].body == "chunked"
    assert heads[2].headers == [(b"Host", b"a.test"), (b"X", b"y")]  # not the trailer
    assert parser._split is None and parser.on_header is not None
    assert run(split_request_head, first + chunked + last, [], Limits()) == run(
        None, first + chunked + last, [], Limits()
    )


@pytest.mark.skipif(SPLIT_REQUEST_HEAD is None, reason="the compiled shim (proto/_h1shim.c) is not built in this tree")
@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"a", b"B-c", b"x_y", b"Expect", b"\r\n", b"\r", b"\n", b":", b" ", b"\t", b"\x80", b"HTTP/1.1"]
        ),
        max_size=20,
    ),
    st.integers(0, 4),
)
def test_the_shim_splits_as_the_python_function(pieces: list[bytes], start: int) -> None:
    """Equal on every head llhttp accepts; on any other bytes the shim only has to stay inside them."""
    assert SPLIT_REQUEST_HEAD is not None
    for buf in (b"GET / HTTP/1.1\r\n" + b"".join(pieces) + b"\r\n\r\n", b"".join(pieces)):
        ours = SPLIT_REQUEST_HEAD(buf, start)
        if llhttp_accepts(buf[start:], httptools.HttpRequestParser):
            assert ours == split_request_head(buf, start)


def _llhttp_at_head_end(head: bytes) -> tuple[bytes, bool]:
    """llhttp's URL (``on_url``'s pieces) and ``should_keep_alive()`` in ``on_headers_complete``."""
    url: list[bytes] = []
    keep_alive: list[bool] = []

    class Callbacks:
        def on_url(self, piece: bytes) -> None:
            url.append(piece)

        def on_headers_complete(self) -> None:
            keep_alive.append(bool(parser.should_keep_alive()))

    parser = httptools.HttpRequestParser(Callbacks())
    with suppress(httptools.HttpParserUpgrade):
        parser.feed_data(head)
    return b"".join(url), keep_alive[0]


@pytest.mark.parametrize("split", SPLITS[1:])
@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
        b"GET  /a?b#c  HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
        b"GET http://h.test/x HTTP/1.1\r\nConnection: Close\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: close, x\r\n\r\n",
        b"GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    ],
)
def test_the_split_gives_the_url_and_keep_alive_llhttp_would(split: SplitRequestHead, head: bytes) -> None:
    found = split(head, 0)
    assert found is not None
    url, keep_alive = found[1], found[7]
    assert (url, keep_alive if keep_alive is not None else _llhttp_at_head_end(head)[1]) == _llhttp_at_head_end(head)
    if head.startswith(b"GET / HTTP/1.1\r\nHost"):  # wrk's request: llhttp is not asked
        assert keep_alive is True


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(
    "reads",
    [
        [b"GET /" + b"u" * 300],  # the URL is still arriving
        [b"GET /" + b"u" * 200, b"u" * 100 + b" HTTP/1.1\r\nHost: a"],  # the head is still arriving
        [b"GET /" + b"u" * 300 + b" HTTP/1.1\r\nA : b\r\n\r\n"],  # llhttp refuses the head after the URL
        [b"GET /a HTTP/1.1\r\n\r\nGET /" + b"u" * 300 + b" HTTP/1.1\r\n\r\n"],  # a complete head, pipelined
    ],
)
def test_a_url_over_the_limit_is_414_whatever_follows(split: SplitRequestHead | None, reads: list[bytes]) -> None:
    """The callbacks raise 414 as the URL arrives; without ``on_url`` the parser reads such a head again through
    them, so each way raises it at the same read, with the same events completed before it."""
    parser = RequestParser(Limits(max_url_bytes=256, max_request_head_bytes=400), split=split)
    for piece in reads[:-1]:
        parser.feed(piece)
    with pytest.raises(UriTooLong):
        parser.feed(reads[-1])
    assert len(parser.complete_events()) == (2 if len(reads[-1]) > 330 and reads[-1].startswith(b"GET /a ") else 0)
