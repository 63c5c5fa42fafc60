"""The HTTP/2 policy shared by both codec adapters, driven with plain values: no codec, no bytes."""

from __future__ import annotations

import pytest

from originlock.proto.http2_events import (
    CANCEL,
    ENHANCE_YOUR_CALM,
    NO_ERROR,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    H2Event,
    H2Limits,
    RequestStarted,
    StreamData,
    StreamReset,
)
from originlock.proto.http2_gate import FRAME_SIZE_ERROR
from originlock.proto.http2_policy import REFUSE, RESET, START, StreamPolicy, content_length

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/")]
POST = [(b":method", b"POST"), *GET[1:]]


def test_a_valid_request_starts_and_counts() -> None:
    policy = StreamPolicy(H2Limits())
    act = policy.on_request(1, GET, True, 0)
    assert act.kind == START and act.request is not None and act.request.target == b"/"
    assert act.remaining == -1 and not act.goaway and not act.charge
    assert policy.requests == 1 and policy.highest == 1


def test_content_length_is_handed_to_the_codec() -> None:
    act = StreamPolicy(H2Limits()).on_request(1, [*POST, (b"content-length", b"12")], False, 0)
    assert act.kind == START and act.remaining == 12


@pytest.mark.parametrize("value", [b"x", b"-1", b"1" * 19])
def test_a_content_length_that_is_not_a_number_is_a_charged_stream_error(value: bytes) -> None:
    act = StreamPolicy(H2Limits()).on_request(1, [*POST, (b"content-length", value)], False, 0)
    assert (act.kind, act.reset_code, act.charge) == (RESET, PROTOCOL_ERROR, True)


def test_content_length_values_must_agree() -> None:
    assert content_length([(b"content-length", b"3"), (b"content-length", b"3")]) == 3
    assert content_length([(b"content-length", b"3"), (b"content-length", b"4")]) == -1
    assert content_length([]) == -1


def test_a_malformed_request_is_a_charged_stream_error() -> None:
    act = StreamPolicy(H2Limits()).on_request(1, [*GET, (b"Upper", b"x")], True, 0)
    assert (act.kind, act.reset_code, act.charge) == (RESET, PROTOCOL_ERROR, True)


def test_a_request_the_edge_refuses_gets_its_http1_status() -> None:
    act = StreamPolicy(H2Limits()).on_request(1, [(b":method", b"CONNECT"), (b":authority", b"a.test:443")], True, 0)
    assert act.kind == REFUSE and act.error is not None and act.error.status_hint == 400


def test_a_stream_beyond_the_concurrency_limit_is_refused_and_charged() -> None:
    policy = StreamPolicy(H2Limits(max_concurrent_streams=2))
    act = policy.on_request(5, GET, True, 2)
    assert (act.kind, act.reset_code, act.charge) == (RESET, REFUSED_STREAM, True)
    assert policy.on_request(7, GET, True, 1).kind == START


def test_the_last_allowed_request_starts_a_graceful_goaway() -> None:
    policy = StreamPolicy(H2Limits(max_requests=2))
    assert not policy.on_request(1, GET, True, 0).goaway
    assert policy.on_request(3, GET, True, 0).goaway


def test_goaway_names_the_last_stream_then_refuses_later_ones_free_up_to_the_concurrency_limit() -> None:
    policy = StreamPolicy(H2Limits(max_concurrent_streams=2))
    policy.on_request(1, GET, True, 0)
    assert policy.goaway(final=False, ended=False) == 2**31 - 1  # the announcement
    assert policy.goaway(final=False, ended=False) is None
    assert policy.goaway(final=True, ended=False) == 1
    assert policy.goaway(final=True, ended=False) is None
    late = [policy.on_request(sid, GET, True, 0) for sid in (3, 5, 7)]
    assert [(a.kind, a.reset_code) for a in late] == [(RESET, REFUSED_STREAM)] * 3
    assert [a.charge for a in late] == [False, False, True]
    assert policy.closed(False, 0) and not policy.closed(False, 1) and policy.closed(True, 1)


def test_no_goaway_once_the_connection_ended() -> None:
    policy = StreamPolicy(H2Limits())
    assert policy.goaway(final=True, ended=True) is None
    assert not policy.closed(False, 0)


def test_a_response_that_ends_before_its_request_resets_the_stream_no_error() -> None:
    policy = StreamPolicy(H2Limits())
    assert policy.on_response_ended(request_ended=False) == NO_ERROR
    assert policy.on_response_ended(request_ended=True) is None


def test_resets_beyond_the_budget_end_the_connection_and_responses_earn_them_back() -> None:
    policy = StreamPolicy(H2Limits(reset_budget=2))
    for _ in range(2):
        policy.gate.charge_reset()
    assert policy.over_budget() is None
    policy.on_response_ended(request_ended=True)  # one earned back
    policy.gate.charge_reset()
    assert policy.over_budget() is None
    policy.gate.charge_reset()
    over = policy.over_budget()
    assert over is not None and over[0] == ENHANCE_YOUR_CALM and "rapid reset" in over[1]


def test_the_gate_gets_the_limits() -> None:
    policy = StreamPolicy(H2Limits(max_frame_size=16384, reset_budget=7))
    assert policy.gate.resets_left == 7
    scan = policy.gate.scan(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + (16385).to_bytes(3) + b"\x00\x00\x00\x00\x00\x01")
    assert scan.error is not None and scan.accepted == 24


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _headers(stream_id: int) -> bytes:
    """A HEADERS frame with END_HEADERS and END_STREAM (the gate reads frame headers only)."""
    return (3).to_bytes(3) + b"\x01\x05" + stream_id.to_bytes(4) + b"abc"


class _Adapter:
    """A codec adapter (``CodecAdapter``) that records what the policy hands it; ``script`` runs per piece."""

    def __init__(self, policy: StreamPolicy, script: list[list[tuple[str, int]]] | None = None) -> None:
        self.policy = policy
        self.script = script or []
        self.pieces: list[tuple[bytes, int]] = []
        self.calls: list[str] = []
        self.ended: tuple[int, str] | None = None

    def _receive(self, data: bytes, events: list[H2Event], opened: int) -> bool:
        self.calls.append("receive")
        self.pieces.append((data, opened))
        for action, stream_id in self.script.pop(0) if self.script else []:
            if action == "open":
                act = self.policy.on_request(stream_id, GET, False, 0)
                assert act.request is not None
                events.append(RequestStarted(stream_id, act.request))
            elif action == "data":
                events.append(StreamData(stream_id, b"x"))
            elif action == "reset":
                self.policy.on_stream_reset(stream_id, CANCEL, False, events)
            elif action == "charge":
                self.policy.gate.charge_reset()
        return self.ended is None

    def _before_opening(self) -> None:
        self.calls.append("before")

    def _end(self, code: int, reason: str, events: list[H2Event]) -> None:
        self.calls.append("end")
        self.ended = (code, reason)


def test_a_read_goes_to_the_codec_whole_while_the_concurrency_limit_is_far() -> None:
    policy = StreamPolicy(H2Limits(max_concurrent_streams=3))
    adapter = _Adapter(policy)
    data = PREFACE + _headers(1) + _headers(3)
    assert policy.feed(adapter, data, 1, []) == []
    assert adapter.pieces == [(data, 2)] and adapter.calls == ["receive"]


def test_near_the_concurrency_limit_the_codec_gets_one_opened_stream_at_a_time() -> None:
    policy = StreamPolicy(H2Limits(max_concurrent_streams=2))
    adapter = _Adapter(policy)
    first, second = PREFACE + _headers(1), _headers(3)
    policy.feed(adapter, first + second + b"\x00\x00", 1, [])
    assert adapter.pieces == [(first, 1), (second, 1), (b"\x00\x00", 0)]
    assert adapter.calls == ["before", "receive", "before", "receive", "receive"]


def test_the_codec_never_gets_the_frame_that_crossed_a_gate_limit() -> None:
    policy = StreamPolicy(H2Limits(max_frame_size=16384))
    adapter = _Adapter(policy)
    policy.feed(adapter, PREFACE + _headers(1) + (16385).to_bytes(3) + b"\x00" * 6, 0, [])
    assert adapter.pieces == [(PREFACE + _headers(1), 1)]
    assert adapter.ended is not None and adapter.ended[0] == FRAME_SIZE_ERROR


def test_a_stream_opened_and_reset_in_one_read_yields_no_event() -> None:
    policy = StreamPolicy(H2Limits())
    adapter = _Adapter(policy, [[("open", 1), ("data", 1), ("open", 3), ("reset", 1)]])
    events = policy.feed(adapter, PREFACE + _headers(1) + _headers(3), 0, [])
    assert [(type(e), getattr(e, "stream_id", 0)) for e in events] == [(RequestStarted, 3)]
    # In a later read the reset reaches the edge.
    adapter.script = [[("reset", 3)]]
    events = policy.feed(adapter, b"", 1, [])
    assert [(type(e), getattr(e, "stream_id", 0)) for e in events] == [(StreamReset, 3)]


def test_a_refused_stream_reset_later_yields_no_event() -> None:
    policy = StreamPolicy(H2Limits())
    events: list[H2Event] = []
    policy.on_stream_reset(5, CANCEL, True, events)
    assert events == []


def test_resets_beyond_the_budget_during_a_read_end_the_connection() -> None:
    policy = StreamPolicy(H2Limits(max_concurrent_streams=1, reset_budget=1))
    adapter = _Adapter(policy, [[("charge", 0)], [("charge", 0)]])
    policy.feed(adapter, PREFACE + _headers(1) + _headers(3), 1, [])
    assert adapter.calls == ["before", "receive", "before", "receive", "end"]
    assert adapter.ended is not None and adapter.ended[0] == ENHANCE_YOUR_CALM


def test_the_settings_both_codecs_advertise_come_from_the_limits() -> None:
    limits = H2Limits(max_concurrent_streams=7, initial_window=70000, max_header_list_size=9000, max_frame_size=20000)
    settings = StreamPolicy(limits).settings()
    assert settings[0] == (0x3, 7)  # MAX_CONCURRENT_STREAMS first: the nghttp2 adapter adds it itself
    assert dict(settings) == {0x3: 7, 0x4: 70000, 0x6: 9000, 0x5: 20000, 0x2: 0}
