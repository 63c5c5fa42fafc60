"""The sans-IO HTTP/2 server (proto/http2.py) driven by ``h2`` as a real client: request translation, the
refusals shared with HTTP/1, stream errors, trailers, flow control both ways, responses. Raw-frame attacks
and GOAWAY are in test_http2_frames.py."""

from __future__ import annotations

import itertools
from typing import TypeVar

import h2.config
import h2.connection
import h2.events
import pytest
from hyperframe.frame import Frame, RstStreamFrame
from hypothesis import given, settings
from hypothesis import strategies as st

from originlock.errors import HeadersTooLarge, MalformedRequest, UnsafeHeaderValue, UriTooLong
from originlock.proto import http2_request
from originlock.proto.events import RequestReceived
from originlock.proto.http2 import (
    CANCEL,
    PROTOCOL_ERROR,
    ConnectionEnded,
    H2Event,
    H2Limits,
    H2Server,
    RequestRefused,
    RequestStarted,
    StreamData,
    StreamEnded,
    StreamReset,
    WindowOpened,
)

Fields = list[tuple[bytes, bytes]]
E = TypeVar("E", bound=h2.events.Event)


class Pair:
    """An ``h2`` client connected to an :class:`H2Server` through memory."""

    def __init__(self, limits: H2Limits | None = None, client_window: int | None = None) -> None:
        self.server = H2Server(limits) if limits is not None else H2Server()
        self.server.initiate()
        # The client sends what it is told, as a careless or hostile one would.
        config = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False)
        self.client = h2.connection.H2Connection(config)
        self.client.initiate_connection()
        if client_window is not None:
            self.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: client_window})
        self.client_events: list[h2.events.Event] = []
        self.pump()

    def pump(self) -> list[H2Event]:
        """Move bytes both ways until neither side has anything to send; the server's events."""
        events: list[H2Event] = []
        while True:
            to_server = self.client.data_to_send()
            if to_server:
                events += self.server.feed(to_server)
            to_client = self.server.data_to_send()
            if to_client:
                self.client_events += self.client.receive_data(to_client)
            if not to_server and not to_client:
                return events

    def request(self, fields: Fields, body: bytes | None = None, stream_id: int | None = None) -> list[H2Event]:
        sid = stream_id or self.client.get_next_available_stream_id()
        self.client.send_headers(sid, fields, end_stream=body is None)
        if body is not None:
            self.client.send_data(sid, body, end_stream=True)
        return self.pump()

    def send_body(self, stream_id: int, body: bytes, end_stream: bool = False) -> None:
        for at in range(0, len(body), 16384):
            last = at + 16384 >= len(body)
            self.client.send_data(stream_id, body[at : at + 16384], end_stream=end_stream and last)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.client_events if isinstance(e, kind)]

    def body(self) -> bytes:
        return b"".join(e.data or b"" for e in self.of(h2.events.DataReceived))


def frames(data: bytes) -> list[Frame]:
    out = []
    while data:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        out.append(frame)
        data = data[9 + length :]
    return out


def head(
    method: bytes = b"GET", path: bytes = b"/", authority: bytes = b"example.com", *extra: tuple[bytes, bytes]
) -> Fields:
    return [(b":method", method), (b":scheme", b"https"), (b":authority", authority), (b":path", path), *extra]


def started(events: list[H2Event]) -> list[RequestReceived]:
    return [e.request for e in events if isinstance(e, RequestStarted)]


def test_a_get_becomes_the_request_the_http1_parser_would_give() -> None:
    pair = Pair()
    events = pair.request(head(b"GET", b"/a/./b/../c?q=1", b"example.com", (b"accept", b"*/*")))
    assert [type(e) for e in events] == [RequestStarted, StreamEnded]
    request = started(events)[0]
    assert request == RequestReceived(
        b"GET", b"/a/c?q=1", b"2", [(b"host", b"example.com"), (b"accept", b"*/*")], True, "none", False
    )
    assert events[0].stream_id == events[1].stream_id == 1  # type: ignore[union-attr]
    assert pair.server.open_streams == 1


def test_host_alone_is_enough() -> None:
    request = started(
        Pair().request([(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b"host", b"h.test")])
    )[0]
    assert request.headers == [(b"host", b"h.test")]


def test_a_host_equal_to_authority_is_kept_once_and_cookies_are_joined() -> None:
    pair = Pair()
    fields = head(b"GET", b"/", b"a.test", (b"host", b"a.test"), (b"cookie", b"a=1"), (b"cookie", b"b=2"))
    request = started(pair.request(fields))[0]
    assert [v for n, v in request.headers if n == b"host"] == [b"a.test"]
    assert (b"cookie", b"a=1; b=2") in request.headers


def test_a_host_that_differs_from_authority_is_a_stream_error_and_the_connection_goes_on() -> None:
    pair = Pair()
    events = pair.request(head(b"GET", b"/", b"a.test", (b"host", b"b.test")))
    assert started(events) == []
    resets = pair.of(h2.events.StreamReset)
    assert [(r.stream_id, r.error_code) for r in resets] == [(1, PROTOCOL_ERROR)]
    assert started(pair.request(head()))[0].target == b"/"
    assert not pair.server.closed


@pytest.mark.parametrize(
    "field",
    [
        (b"connection", b"close"),
        (b"te", b"gzip"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"websocket"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-connection", b"keep-alive"),
    ],
)
def test_connection_specific_fields_are_a_stream_error(field: tuple[bytes, bytes]) -> None:
    pair = Pair()
    pair.client.config.normalize_outbound_headers = False
    events = pair.request(head(b"GET", b"/", b"example.com", field))
    assert started(events) == []
    assert [r.error_code for r in pair.of(h2.events.StreamReset)] == [PROTOCOL_ERROR]
    assert started(pair.request(head()))  # the connection still serves


@pytest.mark.parametrize(
    "fields",
    [
        [*head()[:3], (b":path", b"/"), (b"X-Upper", b"1")],  # upper-case name
        head()[:3],  # no :path
        [(b"accept", b"*/*"), *head()],  # a pseudo-header field after a regular one
        [*head(), (b":protocol", b"websocket")],  # RFC 8441 is not offered
        [*head(), (b"x-a", b" padded ")],
        [*head(), (b"x-a", b"nul\0")],
        [*head(b"GET", b"/", b"a.test"), (b"host", b"a.test"), (b"host", b"a.test")],  # two Host fields
        [(b":status", b"200"), *head()],  # a response pseudo-header field
        [(b":method", b"GET"), (b":method", b"GET"), *head()[1:]],  # repeated
        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/")],  # neither :authority nor Host
        head(b"GET", b""),  # empty :path
    ],
)
def test_malformed_header_blocks_are_a_stream_error(fields: Fields) -> None:
    pair = Pair()
    pair.client.config.normalize_outbound_headers = False
    events = pair.request(fields)
    assert started(events) == []
    assert [r.error_code for r in pair.of(h2.events.StreamReset)] == [PROTOCOL_ERROR]
    assert started(pair.request(head()))


def test_the_cache_of_valid_field_names_is_bounded() -> None:
    pair = Pair()
    fields = [(b"x-n%d" % i, b"v") for i in range(5000)]  # more distinct names than the cache keeps
    for at in range(0, 5000, 500):
        assert started(pair.request(head(b"GET", b"/", b"example.com", *fields[at : at + 500])))
    assert len(http2_request._PLAIN_NAMES) <= http2_request._MAX_NAMES
    pair.client.config.normalize_outbound_headers = False
    request = started(pair.request(head(b"GET", b"/", b"example.com", (b"x-n4999", b"w"), (b"X-Up", b"1"))))
    assert request == []  # past the cache, names are still checked: upper-case is refused


def test_te_trailers_is_allowed() -> None:
    request = started(Pair().request(head(b"GET", b"/", b"example.com", (b"te", b"trailers"))))[0]
    assert (b"te", b"trailers") in request.headers


def test_body_framing_follows_content_length_or_end_stream() -> None:
    pair = Pair()
    events = pair.request(head(b"POST", b"/up", b"example.com", (b"content-length", b"5")), b"hello")
    assert started(events)[0].body == "length"
    assert [type(e) for e in events] == [RequestStarted, StreamData, StreamEnded]
    assert events[1].data == b"hello"  # type: ignore[union-attr]
    events = pair.request(head(b"POST", b"/up"), b"no length")
    assert started(events)[0].body == "chunked"
    assert b"".join(e.data for e in events if isinstance(e, StreamData)) == b"no length"


@pytest.mark.parametrize("body", [b"too long", b"shrt"])
def test_a_body_that_does_not_match_content_length_is_a_stream_error(body: bytes) -> None:
    pair = Pair()
    pair.client.send_headers(1, head(b"POST", b"/", b"example.com", (b"content-length", b"6")))
    assert isinstance(pair.pump()[0], RequestStarted)
    pair.client.send_data(1, body, end_stream=True)
    events = pair.pump()
    assert isinstance(events[-1], StreamReset) and events[-1].error_code == PROTOCOL_ERROR
    assert not any(isinstance(e, StreamEnded) for e in events)
    assert pair.server.open_streams == 0
    assert started(pair.request(head()))  # the connection still serves


def test_content_length_on_a_request_ended_by_its_headers_is_a_stream_error() -> None:
    pair = Pair()
    events = pair.request(head(b"POST", b"/", b"example.com", (b"content-length", b"6")))
    assert started(events) == []
    assert [r.error_code for r in pair.of(h2.events.StreamReset)] == [PROTOCOL_ERROR]


def test_trailers_are_dropped() -> None:
    pair = Pair()
    pair.client.send_headers(1, head(b"POST", b"/"), end_stream=False)
    pair.client.send_data(1, b"body")
    pair.client.send_headers(1, [(b"x-trailer", b"injected")], end_stream=True)
    events = pair.pump()
    assert [type(e) for e in events] == [RequestStarted, StreamData, StreamEnded]
    following = started(pair.request(head()))[0]
    assert all(name != b"x-trailer" for name, _ in following.headers)


@pytest.mark.parametrize(
    ("fields", "error", "status"),
    [
        ([(b":method", b"CONNECT"), (b":authority", b"example.com:443")], MalformedRequest, 400),
        (head(b"OPTIONS", b"*"), MalformedRequest, 400),
        (head(b"GET", b"/x/..%2Fadmin"), MalformedRequest, 400),
        (head(b"GET", b"/a?b c"), MalformedRequest, 400),
        (head(b"G(T", b"/"), MalformedRequest, 400),
        (head(b"GET", b"/", b"user@example.com"), MalformedRequest, 400),
        (head(b"GET", b"/", b"example.com", (b"transfer_encoding", b"chunked")), MalformedRequest, 400),
        (head(b"GET", b"/", b"example.com", (b"expect", b"teapot")), MalformedRequest, 400),
        (head(b"GET", b"/", b"example.com", (b"x-a", b"bell\x07")), MalformedRequest, 400),
        (head(b"GET", b"/" + b"a" * 17000), UriTooLong, 414),
        (head(b"GET", b"/", b"example.com", *[(b"x-f%d" % i, b"v" * 1000) for i in range(40)]), HeadersTooLarge, 431),
    ],
)
def test_requests_http1_refuses_are_refused_with_the_same_status(
    fields: Fields, error: type[Exception], status: int
) -> None:
    pair = Pair()
    events = pair.request(fields)
    assert len(events) == 1 and isinstance(events[0], RequestRefused)
    assert isinstance(events[0].error, error) and events[0].error.status_hint == status
    pair.server.send_response(1, status, [(b"content-length", b"0")], end_stream=True)
    pair.pump()
    assert [r.headers[0] for r in pair.of(h2.events.ResponseReceived)] == [(b":status", b"%d" % status)]
    assert pair.server.open_streams == 0


def test_a_refused_request_with_a_body_is_answered_then_reset_no_error() -> None:
    pair = Pair(H2Limits(connection_window=65535))  # a small window: h2 sends WINDOW_UPDATE at half of it
    pair.client.send_headers(1, [(b":method", b"CONNECT"), (b":authority", b"a.test:443")], end_stream=False)
    events = pair.pump()
    assert isinstance(events[0], RequestRefused)
    pair.server.send_response(1, 400, [], end_stream=True)
    answer = pair.server.data_to_send()
    pair.send_body(1, b"b" * 40000, end_stream=True)  # in flight: dropped, its window given back
    window = pair.client.outbound_flow_control_window
    assert pair.server.feed(pair.client.data_to_send()) == []
    pair.client_events += pair.client.receive_data(answer)
    pair.pump()
    assert [r.headers[0] for r in pair.of(h2.events.ResponseReceived)] == [(b":status", b"400")]
    resets = [f for f in frames(answer) if isinstance(f, RstStreamFrame)]
    assert [(f.stream_id, f.error_code) for f in resets] == [(1, 0)]  # after the answer: NO_ERROR
    assert pair.client.outbound_flow_control_window > window
    assert pair.server.open_streams == 0


def test_expect_100_continue_can_be_answered_with_an_interim_response() -> None:
    pair = Pair()
    pair.client.send_headers(1, head(b"POST", b"/", b"example.com", (b"expect", b"100-continue")))
    request = started(pair.pump())[0]
    assert request.expect_continue
    pair.server.send_response(1, 100, [], end_stream=False)
    pair.pump()
    assert [e.headers for e in pair.of(h2.events.InformationalResponseReceived)] == [[(b":status", b"100")]]


def test_responses_drop_hop_by_hop_fields_and_lower_case_names() -> None:
    pair = Pair()
    pair.request(head())
    fields = [
        (b"Content-Type", b"text/plain"),
        (b"Connection", b"keep-alive, X-Hop"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Upgrade", b"h2c"),
        (b"Proxy-Connection", b"close"),
        (b"X-Hop", b"named by Connection"),
        (b"Set-Cookie", b"a=1"),
    ]
    pair.server.send_response(1, 200, fields, end_stream=True)
    pair.pump()
    (response,) = pair.of(h2.events.ResponseReceived)
    assert response.headers == [(b":status", b"200"), (b"content-type", b"text/plain"), (b"set-cookie", b"a=1")]
    assert pair.server.open_streams == 0


@pytest.mark.parametrize("field", [(b"x-a", b"b\r\nx-injected: 1"), (b"bad name", b"v"), (b"x-nul", b"\0")])
def test_an_unsafe_response_field_is_refused_before_anything_is_sent(field: tuple[bytes, bytes]) -> None:
    pair = Pair()
    pair.request(head())
    with pytest.raises(UnsafeHeaderValue):
        pair.server.send_response(1, 200, [field], end_stream=True)
    assert pair.server.data_to_send() == b""


def test_send_data_waits_for_the_visitors_window_and_respects_frame_size() -> None:
    pair = Pair(client_window=1000)
    pair.request(head())
    pair.server.send_response(1, 200, [], end_stream=False)
    pair.server.send_data(1, b"x" * 5000, end_stream=True)
    first = pair.server.data_to_send()  # (nghttp2 takes the bytes from the stream as it writes frames)
    assert pair.server.buffered(1) == 4000
    pair.client_events += pair.client.receive_data(first)
    pair.pump()
    received = pair.of(h2.events.DataReceived)
    assert sum(len(e.data) for e in received) == 1000
    assert not pair.of(h2.events.StreamEnded)
    opened: list[H2Event] = []
    while pair.server.buffered(1):
        pair.client.acknowledge_received_data(1000, 1)
        opened += pair.pump()
    assert opened and all(isinstance(e, WindowOpened) and e.stream_id == 1 for e in opened)
    received = pair.of(h2.events.DataReceived)
    assert b"".join(e.data for e in received) == b"x" * 5000
    assert all(len(e.data) <= 1000 for e in received)
    assert len(pair.of(h2.events.StreamEnded)) == 1
    assert pair.server.open_streams == 0


def test_a_larger_initial_window_from_the_visitor_releases_held_back_data() -> None:
    pair = Pair(client_window=1000)
    pair.request(head())
    pair.server.send_response(1, 200, [], end_stream=False)
    pair.server.send_data(1, b"x" * 3000)
    pair.pump()
    pair.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
    events = pair.pump()
    assert [type(e) for e in events] == [WindowOpened]
    assert pair.server.buffered(1) == 0
    assert len(pair.body()) == 3000


def test_our_hpack_table_stays_small_whatever_the_visitor_allows() -> None:
    pair = Pair()
    pair.client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 2**31})
    pair.client.decoder.max_allowed_table_size = 2**31  # a client that would accept a huge table
    pair.pump()
    for sid in range(1, 400, 2):
        pair.request(head(), stream_id=sid)
        pair.server.send_response(sid, 200, [(b"x-unique", b"%d" % sid * 100)], end_stream=True)
        pair.pump()
    assert len(pair.of(h2.events.ResponseReceived)) == 200
    assert pair.client.decoder.header_table_size == 4096  # the client's decoder mirrors our encoder


def test_large_bodies_are_cut_at_the_visitors_max_frame_size() -> None:
    pair = Pair()
    pair.request(head())
    pair.server.send_response(1, 200, [], end_stream=False)
    pair.server.send_data(1, b"y" * 40000)
    pair.pump()
    sizes = [len(e.data) for e in pair.of(h2.events.DataReceived)]
    assert sum(sizes) == 40000 and max(sizes) == 16384


def test_request_body_windows_reopen_only_when_the_edge_acknowledges() -> None:
    pair = Pair()
    pair.client.send_headers(1, head(b"POST", b"/"))
    pair.send_body(1, b"z" * 65536)
    events = pair.pump()
    assert sum(len(e.data) for e in events if isinstance(e, StreamData)) == 65536
    assert pair.client.local_flow_control_window(1) == 0  # a slow origin backs the visitor up
    pair.server.acknowledge(1, 65536)
    pair.pump()
    assert pair.client.local_flow_control_window(1) == 65536


def test_a_visitor_reset_stops_the_stream_and_gives_its_window_back() -> None:
    pair = Pair(H2Limits(connection_window=65535))
    pair.client.send_headers(1, head(b"POST", b"/"))
    pair.send_body(1, b"z" * 60000)
    pair.pump()
    window = pair.client.outbound_flow_control_window
    pair.client.reset_stream(1, CANCEL)
    events = pair.pump()
    assert [(type(e), e.error_code) for e in events] == [(StreamReset, CANCEL)]  # type: ignore[union-attr]
    assert pair.server.open_streams == 0
    assert pair.client.outbound_flow_control_window > window  # the 60000 unacknowledged bytes came back
    pair.server.send_data(1, b"late")  # the edge had not noticed yet: a no-op
    pair.server.acknowledge(1, 60000)
    assert pair.server.data_to_send() == b""


def test_a_stream_opened_and_made_invalid_in_one_read_never_reaches_the_edge() -> None:
    pair = Pair()
    events = pair.request(head(b"POST", b"/", b"example.com", (b"content-length", b"6")), b"too long")
    assert events == []
    assert [r.error_code for r in pair.of(h2.events.StreamReset)] == [PROTOCOL_ERROR]
    assert pair.server.open_streams == 0


def test_the_edge_can_reset_a_stream() -> None:
    pair = Pair()
    pair.request(head())
    pair.server.reset(1)
    pair.pump()
    assert [r.error_code for r in pair.of(h2.events.StreamReset)] == [CANCEL]
    assert pair.server.open_streams == 0


def test_a_visitor_goaway_ends_the_connection() -> None:
    pair = Pair()
    pair.client.close_connection()
    events = pair.pump()
    assert len(events) == 1 and isinstance(events[0], ConnectionEnded) and events[0].error_code == 0
    assert pair.server.closed
    assert pair.server.feed(b"anything") == []


def test_feeding_any_split_gives_the_same_events() -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    client.send_headers(1, head(b"POST", b"/p", b"example.com", (b"content-length", b"3")))
    client.send_data(1, b"abc", end_stream=True)
    client.send_headers(3, head(b"GET", b"/q"), end_stream=True)
    raw = client.data_to_send()

    def summary(events: list[H2Event]) -> list[tuple[str, int, bytes]]:
        # StreamData may come in pieces: merge them.
        out: list[tuple[str, int, bytes]] = []
        for event in events:
            name, sid = type(event).__name__, getattr(event, "stream_id", 0)
            data = getattr(event, "data", b"") or getattr(getattr(event, "request", None), "target", b"")
            if out and name == "StreamData" and out[-1][:2] == (name, sid):
                out[-1] = (name, sid, out[-1][2] + data)
            else:
                out.append((name, sid, data))
        return out

    whole = H2Server()
    expected = summary(whole.feed(raw))
    assert [e[0] for e in expected] == ["RequestStarted", "StreamData", "StreamEnded", "RequestStarted", "StreamEnded"]
    for cut in range(1, len(raw)):
        server = H2Server()
        assert summary(server.feed(raw[:cut]) + server.feed(raw[cut:])) == expected, cut
    server = H2Server()
    bytewise: list[H2Event] = []
    for at in range(len(raw)):
        bytewise += server.feed(raw[at : at + 1])
    assert summary(bytewise) == expected


def test_data_to_send_is_empty_when_nothing_is_queued() -> None:
    server = H2Server()
    assert server.data_to_send() == b""
    server.initiate()
    assert server.data_to_send() != b""
    assert server.data_to_send() == b""


@pytest.mark.parametrize(
    "bad",
    [
        {"max_concurrent_streams": 0},
        {"connection_window": 1000},
        {"initial_window": 0},
        {"max_frame_size": 1000},
        {"max_header_list_size": 100},
        {"reset_budget": 0},
        {"max_requests": 0},
    ],
)
def test_limits_are_validated(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        H2Limits(**bad)  # type: ignore[arg-type]


def test_a_status_that_is_not_three_digits_is_refused() -> None:
    pair = Pair()
    pair.request(head())
    with pytest.raises(UnsafeHeaderValue):
        pair.server.send_response(1, 1000, [], end_stream=True)


def test_event_reprs() -> None:
    request = RequestReceived(b"GET", b"/", b"2", [], True, "none", False)
    assert repr(RequestStarted(1, request)) == "RequestStarted(1, RequestReceived(GET /))"
    assert repr(RequestRefused(3, UriTooLong())) == "RequestRefused(3, 414)"
    assert repr(StreamData(1, b"abc")) == "StreamData(1, 3 bytes)"
    assert repr(StreamEnded(1)) == "StreamEnded(1)"
    assert repr(StreamReset(1, 8)) == "StreamReset(1, 8)"
    assert repr(WindowOpened(5)) == "WindowOpened(5)"
    assert repr(ConnectionEnded(11, "calm")) == "ConnectionEnded(11, 'calm')"


# -- property: any well-behaved conversation completes ------------------------------------------------

#: Body sizes around what flow control and framing care about: a frame (16 KiB), a window (64 KiB).
_SIZES = st.sampled_from([0, 1, 16384, 16385, 65535, 65536, 70000]) | st.integers(0, 70000)
_ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("get"), _SIZES),
        st.tuples(st.just("post"), _SIZES, st.booleans()),
        st.tuples(st.just("reset"), st.integers(0, 10)),
        st.tuples(st.just("ping"), st.integers(0, 0)),
        st.tuples(st.just("read"), st.integers(1, 5)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(_ACTIONS, st.lists(st.integers(1, 4000), min_size=1, max_size=8))
def test_a_well_behaved_client_always_gets_every_answer(actions: list[tuple[object, ...]], cuts: list[int]) -> None:
    """An h2 client makes requests (bodies up to 70 KB, declared or not), resets some, pings, and reads
    its responses (bodies up to 70 KB, above its 64 KiB windows) only now and then; the bytes reach the
    server cut at arbitrary points; the edge side acknowledges body bytes as it gets them and answers
    each complete request with a body of the asked size. No connection error, every request not reset
    gets its whole answer, nothing stays open."""
    server = H2Server()
    server.initiate()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    sizes: dict[int, int] = {}  # stream -> response size asked (in the path)
    received: dict[int, int] = {}
    finished: set[int] = set()
    reset: set[int] = set()
    got: dict[int, list[bytes]] = {}
    cut_at = itertools.cycle(cuts)

    def to_server() -> None:
        data = client.data_to_send()
        while data:
            size = next(cut_at)
            for event in server.feed(data[:size]):
                assert not isinstance(event, (ConnectionEnded, RequestRefused)), event
                if isinstance(event, RequestStarted):
                    got[event.stream_id] = []
                elif isinstance(event, StreamData):
                    got[event.stream_id].append(event.data)
                    server.acknowledge(event.stream_id, len(event.data))
                elif isinstance(event, StreamEnded):
                    size_asked = sizes[event.stream_id]
                    server.send_response(
                        event.stream_id, 200, [(b"content-length", b"%d" % size_asked)], end_stream=False
                    )
                    server.send_data(event.stream_id, b"r" * size_asked, end_stream=True)
                elif isinstance(event, StreamReset):
                    reset.add(event.stream_id)
            data = data[size:]

    def to_client() -> None:
        data = server.data_to_send()
        if not data:
            return
        for event in client.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                received[event.stream_id] = received.get(event.stream_id, 0) + len(event.data or b"")
                client.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                finished.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                reset.add(event.stream_id)

    to_server()
    to_client()
    for action in actions:
        kind = action[0]
        if kind in ("get", "post"):
            sid = client.get_next_available_stream_id()
            sizes[sid] = int(action[1])  # type: ignore[call-overload]
            path = b"/%d" % sizes[sid]
            if kind == "get":
                client.send_headers(sid, head(b"GET", path), end_stream=True)
            else:
                body = b"q" * sizes[sid]
                extra = [(b"content-length", b"%d" % len(body))] if action[2] else []
                client.send_headers(sid, head(b"POST", path, b"example.com", *extra))
                stalls = 0
                while body:  # as much as the client's windows allow now; the rest after the server reads
                    window = min(client.local_flow_control_window(sid), client.max_outbound_frame_size)
                    if window == 0:
                        stalls += 1
                        assert stalls < 100, "the server never reopened the request's windows"
                        to_server()
                        to_client()
                        continue
                    client.send_data(sid, body[:window])
                    body = body[window:]
                client.end_stream(sid)
        elif kind == "reset":
            open_ids = sorted(s for s in sizes if s not in finished and s not in reset)
            if open_ids:
                sid = open_ids[int(action[1]) % len(open_ids)]  # type: ignore[call-overload]
                client.reset_stream(sid)
                reset.add(sid)
        elif kind == "ping":
            client.ping(b"12345678")
        for _ in range(int(action[1]) if kind == "read" else 1):  # type: ignore[call-overload]
            to_server()
            to_client()
    for _ in range(200):  # read everything
        to_server()
        to_client()
        if all(s in finished or s in reset for s in sizes):
            break
    for sid, size in sizes.items():
        if sid not in reset:
            assert sid in finished and received.get(sid, 0) == size, (sid, size, received.get(sid))
    assert server.open_streams == 0
    assert not server.closed
