"""Request framing and request shapes the parser refuses or resolves (issue 10 items 4, 5, 13, 14, 15 and
issue 12's HTTP/1.0 chunked request), in one read and split at every byte."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from originlock.errors import DownstreamError, MalformedRequest, OriginBadResponse, UnsupportedTransferCoding
from originlock.pipeline.builtin.forwarding import origin_request_head
from originlock.proto import (
    BodyReceived,
    Event,
    MessageEnded,
    RequestParser,
    RequestReceived,
    ResponseParser,
    ResponseReceived,
)


def _feed_split(raw: bytes) -> list[list[Event]]:
    """The events of ``raw`` fed whole and split in two at every byte (the same each time, or an error)."""
    results = []
    for cut in [len(raw), *range(1, len(raw))]:
        parser = RequestParser()
        results.append(parser.feed(raw[:cut]) + parser.feed(raw[cut:]))
    return results


def test_trailers_are_not_merged_into_the_next_pipelined_request() -> None:
    raw = (
        b"POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\nX-Trailer-Injected: yes\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    for events in _feed_split(raw):
        heads = [e for e in events if isinstance(e, RequestReceived)]
        assert [h.target for h in heads] == [b"/first", b"/second"]
        assert heads[1].headers == [(b"Host", b"a")]  # was [X-Trailer-Injected, Host]
        assert heads[0].headers == [(b"Host", b"a"), (b"Transfer-Encoding", b"chunked")]


@pytest.mark.parametrize(
    "first",
    [
        b"GET /first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET /first HTTP/1.0\r\nHost: a\r\n\r\n",
    ],
)
def test_bytes_after_a_request_that_closes_are_ignored(first: bytes) -> None:
    """Issue 10 item 15: the first request is served; what follows is dropped, not answered 400."""
    for events in _feed_split(first + b"GET /SMUGGLED HTTP/1.1\r\nHost: a\r\n\r\n"):
        assert len(events) == 2 and isinstance(events[0], RequestReceived) and isinstance(events[1], MessageEnded)
        assert events[0].target == b"/first" and not events[0].keep_alive
    parser = RequestParser()
    parser.feed(first)
    assert parser.feed(b"garbage\r\n\r\n") == [] and parser.feed(b"more") == []


def test_requests_completed_before_an_error_are_kept() -> None:
    parser = RequestParser()
    with pytest.raises(MalformedRequest):
        parser.feed(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /bad HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n")
    events = parser.complete_events()
    assert [type(e) for e in events] == [RequestReceived, MessageEnded] and events[0].target == b"/ok"  # type: ignore[union-attr]
    parser = RequestParser()
    with pytest.raises(MalformedRequest):  # a body cut by the error: its request is dropped
        parser.feed(b"POST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
    assert parser.complete_events() == []


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        # Issue 10 item 14, each answered 400 (501 for the transfer coding) by nginx as well.
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
            MalformedRequest,
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n", MalformedRequest),
        (b"GET / HTTP/1.1\r\nHost: a\r\nCF_Connecting_IP: 1.2.3.4\r\n\r\n", MalformedRequest),
        (b"GET http://a/x HTTP/1.1\r\n\r\n", MalformedRequest),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", MalformedRequest),
        (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", MalformedRequest),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\t\r\n\r\nhello", MalformedRequest),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", UnsupportedTransferCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", UnsupportedTransferCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", MalformedRequest),
        # Issue 12 / RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        (b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", MalformedRequest),
        (b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", MalformedRequest),
    ],
)
def test_refused_request_shapes(raw: bytes, error: type[DownstreamError]) -> None:
    for cut in [len(raw), *range(1, len(raw))]:
        parser = RequestParser()
        with pytest.raises(error) as caught:
            parser.feed(raw[:cut])
            parser.feed(raw[cut:])
        assert type(caught.value) is error
    assert UnsupportedTransferCoding.status_hint == 501 and MalformedRequest.status_hint == 400


def test_content_length_with_trailing_spaces_is_trimmed() -> None:
    (head, body, end) = RequestParser().feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5  \r\n\r\nhello")
    assert isinstance(head, RequestReceived) and head.headers == [(b"Host", b"a"), (b"Content-Length", b"5")]
    assert body == BodyReceived(b"hello") and isinstance(end, MessageEnded)
    sent = origin_request_head(head, client_ip="192.0.2.1", scheme="https", ray_id="r")
    assert b"\r\nContent-Length: 5\r\n" in sent


def test_absolute_form_target_replaces_host_and_is_normalised() -> None:
    (head, _) = RequestParser().feed(b"GET http://www.d.test//admin/./x HTTP/1.1\r\nHost: www.a.test\r\n\r\n")
    assert isinstance(head, RequestReceived)
    assert (head.target, head.headers) == (b"/admin/x", [(b"Host", b"www.d.test")])
    sent = origin_request_head(head, client_ip="192.0.2.1", scheme="http", ray_id="r")
    assert sent.startswith(b"GET /admin/x HTTP/1.1\r\nHost: www.d.test\r\n")
    (head, _) = RequestParser().feed(b"GET http://www.d.test?a=/b HTTP/1.0\r\n\r\n")
    assert isinstance(head, RequestReceived) and (head.target, head.headers) == (b"/?a=/b", [(b"Host", b"www.d.test")])


def test_empty_chunked_body_in_one_read_ends_the_message() -> None:
    events = RequestParser().feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert len(events) == 2 and isinstance(events[0], RequestReceived) and events[0].body == "chunked"


@pytest.mark.parametrize("value", [b"\r", b"\n", b"\x00", b"\x01", b"\x7f", b"\r\n\r\nGET /SMUGGLED HTTP/1.1"])
def test_the_parser_refuses_cr_lf_nul_in_names_and_values(value: bytes) -> None:
    """What lets forwarding copy parsed fields unchecked (serialize.add_parsed_field)."""
    for raw in (
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a" + value + b"b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX" + value + b"Y: b\r\n\r\n",
    ):
        events: list[Event] = []
        with contextlib.suppress(MalformedRequest):
            events = RequestParser().feed(raw)
        heads = [e for e in events if isinstance(e, RequestReceived)]
        assert all(
            b"\r" not in n + v and b"\n" not in n + v and b"\0" not in n + v for h in heads for n, v in h.headers
        )
        response = ResponseParser()
        response.start(b"GET")
        try:
            got = response.feed(b"HTTP/1.1 200 OK\r\nX: a" + value + b"b\r\nContent-Length: 0\r\n\r\n")
        except OriginBadResponse:
            got = []
        fields = [v for e in got if isinstance(e, ResponseReceived) for _, v in e.headers]
        assert all(b"\r" not in v and b"\n" not in v and b"\0" not in v for v in fields)


@given(st.binary(max_size=40), st.binary(min_size=1, max_size=12))
def test_forwarded_heads_have_one_line_per_field(value: bytes, name: bytes) -> None:
    """Whatever a visitor puts in a field, if the parser accepts it the origin's head has exactly the
    lines the edge meant to write (no field can add a line, let alone a request)."""
    raw = b"GET / HTTP/1.1\r\nHost: a\r\n" + name + b": " + value + b"\r\n\r\n"
    try:
        events = RequestParser().feed(raw)
    except DownstreamError:
        return
    head = events[0]
    assert isinstance(head, RequestReceived)
    sent = origin_request_head(head, client_ip="192.0.2.1", scheme="https", ray_id="r")
    lines = sent[:-4].split(b"\r\n")
    assert sent.endswith(b"\r\n\r\n") and b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    assert b"\0" not in sent


def test_oversized_response_head_in_one_read_is_refused() -> None:
    """Issue 10 item 13: 140 KB of head in one read passed the 128 KiB limit."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1000) for i in range(140))
    for framing in (b"Content-Length: 2\r\n\r\nok", b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"):
        parser = ResponseParser()
        parser.start(b"GET")
        with pytest.raises(OriginBadResponse, match="larger than 128 KiB"):
            parser.feed(head + framing)
    parser = ResponseParser()  # just under the limit, also in one read: accepted
    parser.start(b"GET")
    small = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1000) for i in range(125))
    events = parser.feed(small + b"Content-Length: 2\r\n\r\nok")
    assert parser.done and isinstance(events[-1], MessageEnded)
