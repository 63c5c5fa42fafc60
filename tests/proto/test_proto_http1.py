"""The sans-IO HTTP/1.1 parsers, with plain byte strings (h11 as an oracle for well-formed input)."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from originlock.errors import HeadersTooLarge, MalformedRequest, OriginBadResponse, UriTooLong
from originlock.proto import (
    BodyReceived,
    Limits,
    MessageEnded,
    RequestParser,
    RequestReceived,
    ResponseParser,
    ResponseReceived,
)
from originlock.proto.events import NameFilter
from originlock.proto.serialize import chunk, request_head, response_head


def test_request_split_at_every_byte_gives_same_events() -> None:
    raw = b"POST /a?b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    for cut in range(1, len(raw)):
        parser = RequestParser()
        events = parser.feed(raw[:cut]) + parser.feed(raw[cut:])
        head = events[0]
        assert isinstance(head, RequestReceived) and head.body == "chunked" and head.target == b"/a?b"
        assert b"".join(e.data for e in events if isinstance(e, BodyReceived)) == b"abc"
        assert isinstance(events[-1], MessageEnded)


@pytest.mark.parametrize(
    "raw",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n  b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n",
    ],
)
def test_ambiguous_or_malformed_requests_raise(raw: bytes) -> None:
    with pytest.raises(MalformedRequest):
        RequestParser().feed(raw)


def test_limits() -> None:
    small = Limits(max_url_bytes=300, max_request_head_bytes=1000)
    with pytest.raises(UriTooLong):
        RequestParser(small).feed(b"GET /" + b"a" * 400 + b" HTTP/1.1\r\n")
    with pytest.raises(HeadersTooLarge):
        RequestParser(small).feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 2000)
    with pytest.raises(ValueError):
        Limits(max_url_bytes=10)


def test_expect_continue_and_keep_alive_flags() -> None:
    (head, end) = RequestParser().feed(b"GET / HTTP/1.0\r\n\r\n")
    assert isinstance(head, RequestReceived) and not head.keep_alive and isinstance(end, MessageEnded)
    events = RequestParser().feed(b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert isinstance(events[0], RequestReceived) and events[0].expect_continue and events[0].body == "length"


def test_response_head_request_has_no_body() -> None:
    parser = ResponseParser()
    parser.start(b"HEAD")
    events = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert [type(e) for e in events] == [type(events[0]), MessageEnded] and parser.done


def test_response_interim_skipped_and_close_delimited() -> None:
    parser = ResponseParser()
    parser.start(b"GET")
    events = parser.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nabc")
    assert events[0].status == 200 and events[0].body == "close"  # type: ignore[union-attr]
    assert parser.feed_eof() == [MessageEnded()]


def test_response_errors_are_520() -> None:
    parser = ResponseParser()
    parser.start(b"GET")
    with pytest.raises(OriginBadResponse):
        parser.feed(b"garbage\r\n\r\n")
    parser.start(b"GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    with pytest.raises(OriginBadResponse):
        parser.feed_eof()


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
_value = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ,;=/", min_size=0, max_size=30).map(str.strip)


@given(headers=st.lists(st.tuples(_token, _value), max_size=8), body=st.binary(max_size=200))
def test_serialised_requests_parse_like_h11(headers: list[tuple[str, str]], body: bytes) -> None:
    fields = (
        [(b"Host", b"example.test")]
        + [(b"x-" + n.encode(), v.encode()) for n, v in headers]
        + [(b"Transfer-Encoding", b"chunked")]
    )
    raw = request_head(b"POST", b"/p", fields) + (chunk(body) if body else b"") + b"0\r\n\r\n"
    ours = RequestParser().feed(raw)
    oracle = h11.Connection(h11.SERVER)
    oracle.receive_data(raw)
    request = oracle.next_event()
    assert isinstance(request, h11.Request)
    head = ours[0]
    assert isinstance(head, RequestReceived)
    assert [(n.lower(), v) for n, v in head.headers] == [(n.lower(), v) for n, v in request.headers.raw_items()]
    assert b"".join(e.data for e in ours if isinstance(e, BodyReceived)) == body


def test_response_head_serialisation() -> None:
    assert response_head(525, [(b"A", b"b")]) == b"HTTP/1.1 525 SSL Handshake Failed\r\nA: b\r\n\r\n"


def test_request_versions_however_the_bytes_arrive() -> None:
    """The version is sliced from the request line when a read starts with it, else asked of llhttp."""
    one = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    zero = b"GET /y HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"
    body = b"POST /p HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
    cases = [
        ([one + zero], [b"1.1", b"1.0"]),  # pipelined: the second is not at the start of the read
        ([zero, one], [b"1.0", b"1.1"]),
        ([one[:9], one[9:] + zero], [b"1.1", b"1.0"]),  # a head split over two reads
        ([body + one], [b"1.0", b"1.1"]),
        ([body[:-1], body[-1:] + zero], [b"1.0", b"1.0"]),  # a body's end and the next head in one read
        ([b"\r\n" + one], [b"1.1"]),  # llhttp skips an empty line before a request line
    ]
    for reads, versions in cases:
        parser = RequestParser()
        heads = [e for data in reads for e in parser.feed(data) if isinstance(e, RequestReceived)]
        assert [h.version for h in heads] == versions, reads


def test_request_methods_however_the_bytes_arrive() -> None:
    """GET is read from the start of a read (as the version is), any other method is asked of llhttp."""
    get, head = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"
    post = b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok"
    cases = [
        ([get + head + get], [b"GET", b"HEAD", b"GET"]),
        ([head, get[:2], get[2:]], [b"HEAD", b"GET"]),
        ([post + get, b"\r\n" + get], [b"POST", b"GET", b"GET"]),
    ]
    for reads, methods in cases:
        parser = RequestParser()
        heads = [e for data in reads for e in parser.feed(data) if isinstance(e, RequestReceived)]
        assert [h.method for h in heads] == methods, reads
    with pytest.raises(MalformedRequest):
        RequestParser().feed(b"GETS /x HTTP/1.1\r\nHost: a\r\n\r\n")


@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
def test_response_versions_with_and_without_an_interim_response(version: bytes) -> None:
    final = b"HTTP/" + version + b" 200 OK\r\nContent-Length: 0\r\n\r\n"
    for raw in (final, b"HTTP/1.1 100 Continue\r\n\r\n" + final):
        parser = ResponseParser()
        parser.start(b"GET")
        head = parser.feed(raw)[0]
        assert isinstance(head, ResponseReceived) and head.status == 200 and head.version == version


def test_status_lines_keep_the_origins_reason_phrase() -> None:
    """Standard lines come from a table; any other reason phrase, status or version is written as given."""
    assert response_head(200, []) == response_head(200, [], b"OK") == b"HTTP/1.1 200 OK\r\n\r\n"
    assert response_head(200, [], b"Fine") == b"HTTP/1.1 200 Fine\r\n\r\n"
    assert response_head(525, []) == b"HTTP/1.1 525 SSL Handshake Failed\r\n\r\n"
    assert response_head(599, []) == b"HTTP/1.1 599 \r\n\r\n"
    assert response_head(200, [], b"OK", b"1.0") == b"HTTP/1.0 200 OK\r\n\r\n"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade\r\nUpgrade: h2c\r\n\r\nextra",
    ],
)
def test_an_upgrade_request_is_answered_and_the_connection_closed(raw: bytes) -> None:
    """The edge does not tunnel: the request is served without upgrading, then the connection closes."""
    parser = RequestParser()
    (head, *_rest) = parser.feed(raw)
    assert isinstance(head, RequestReceived) and head.target == b"/ws" and not head.keep_alive
    with pytest.raises(MalformedRequest):
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    plain = RequestParser().feed(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")[0]
    assert isinstance(plain, RequestReceived) and plain.keep_alive  # Upgrade not named in Connection: no upgrade


def test_name_filter_never_rules_out_one_of_its_names() -> None:
    names = [b"connection", b"te", b"transfer-encoding", b"cf-ray", b"x-forwarded-for"]
    only = NameFilter(names)
    for name in names:
        for variant in (name, name.upper(), name.title()):
            assert only.may_be(variant)
    assert not any(only.may_be(n) for n in (b"Server", b"Date", b"Content-Type", b"Accept", b""))
    assert (only | NameFilter([b"host"])).may_be(b"Host") and not only.may_be(b"Host")


@pytest.mark.parametrize(
    "extra",
    [
        b"garbage",
        b"HTTP/1.1 200 OK\r\nX-Injected: 1\r\n",
        b"HTTP/1.1 200 OK\r\nX-Injected: 1\r\nContent-Length: 0\r\n\r\n",  # a whole second response
    ],
)
def test_bytes_after_a_complete_response_leave_it_intact_and_the_connection_unusable(extra: bytes) -> None:
    """llhttp parses on past the response's end; the response handed out must not change (its fields list
    once took the next message's fields), and the connection must not carry another exchange."""
    parser = ResponseParser()
    parser.start(b"GET")
    events = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + extra)
    assert [type(e) for e in events] == [ResponseReceived, BodyReceived, MessageEnded]
    head = events[0]
    assert isinstance(head, ResponseReceived) and head.headers == [(b"Content-Length", b"2")]
    assert parser.done and parser.extra_data
    parser.start(b"GET")  # a new exchange forgets it (the pool closed that connection meanwhile)
    assert not parser.extra_data


def test_a_body_sent_with_the_answer_to_head_is_extra_data() -> None:
    parser = ResponseParser()
    parser.start(b"HEAD")
    events = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert [type(e) for e in events] == [ResponseReceived, MessageEnded] and not parser.extra_data
    parser.start(b"HEAD")
    events = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert [type(e) for e in events] == [ResponseReceived, MessageEnded] and parser.extra_data


def test_only_the_upgrade_request_closes_the_connection_when_pipelined() -> None:
    raw = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n" + (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    heads = [e for e in RequestParser().feed(raw) if isinstance(e, RequestReceived)]
    assert [(h.target, h.keep_alive) for h in heads] == [(b"/a", True), (b"/ws", False)]


_NGINX_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\nok"
)


def test_a_usual_head_whole_in_one_read_comes_with_its_field_lines() -> None:
    """``raw_fields``: the field lines as the origin wrote them, for the head writer to copy (pooled3)."""
    parser = ResponseParser()
    parser.start(b"GET")
    response = parser.feed(_NGINX_RESPONSE)[0]
    assert isinstance(response, ResponseReceived)
    lines = _NGINX_RESPONSE[len(b"HTTP/1.1 200 OK\r\n") : _NGINX_RESPONSE.index(b"\r\n\r\n") + 2]
    assert response.raw_fields == lines and response.raw_of is response.headers
    assert lines == b"".join(b"%s: %s\r\n" % field for field in response.headers)


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nServer:nginx\r\nContent-Length: 2\r\n\r\nok",  # no space after the colon
        b"HTTP/1.1 200 OK\r\nServer:  nginx\r\nContent-Length: 2\r\n\r\nok",  # two
        b"HTTP/1.1 200 OK\r\nServer:\tnginx\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",  # no reason phrase, no space before it
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",  # not at the read's start
    ],
)
def test_other_spellings_of_a_head_give_no_field_lines(wire: bytes) -> None:
    parser = ResponseParser()
    parser.start(b"GET")
    response = parser.feed(wire)[0]
    assert isinstance(response, ResponseReceived) and response.raw_fields == b""


def test_a_head_in_pieces_gives_no_field_lines_and_a_later_exchange_does() -> None:
    parser = ResponseParser()
    parser.start(b"GET")
    events = parser.feed(_NGINX_RESPONSE[:20]) + parser.feed(_NGINX_RESPONSE[20:])
    assert isinstance(events[0], ResponseReceived) and events[0].raw_fields == b""
    parser.start(b"GET")
    response = parser.feed(_NGINX_RESPONSE)[0]
    assert isinstance(response, ResponseReceived) and response.raw_fields
