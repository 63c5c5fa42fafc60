"""The HTTP/2 server's policy, shared by both codec adapters: how a read reaches the codec, what to do with
each new stream, each reset one, each finished response, a graceful shutdown, and when the reset budget ends
the connection.

The adapters (``proto/http2_h2.py`` over ``h2``, ``proto/http2_ng.py`` over libnghttp2) own the codec and the
stream table and only translate the codec's events: :meth:`StreamPolicy.feed` runs each read through the
frame gate and hands it to the adapter (:class:`CodecAdapter`); for each new stream they ask this module and
apply the answer, a plain value (:class:`CodecActions`): "reset the stream with this code (and charge the
reset budget)", "refuse the request with this 4xx", or "start it".
So the limits (:class:`~originlock.proto.http2_events.H2Limits`: 128 streams, 1000 requests, the budgets)
and the defences (:class:`~originlock.proto.http2_gate.FrameGate`: frame size, CONTINUATION floods, rapid
reset, control-frame floods; the HPACK-bomb limit is the header-list size each codec's decoder enforces)
are decided once, and the unit tests drive the policy with plain values, no codec, no bytes.
Pure: no I/O, no codec import.
"""

from __future__ import annotations

from typing import Final, Protocol

from originlock.errors import DownstreamError
from originlock.proto.events import Headers, RequestReceived
from originlock.proto.http2_events import (
    ENHANCE_YOUR_CALM,
    NO_ERROR,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    H2Event,
    H2Limits,
    StreamReset,
)
from originlock.proto.http2_gate import FrameGate, GateLimits
from originlock.proto.http2_request import StreamMalformed, request_from_fields

__all__ = ["REFUSE", "RESET", "START", "CodecActions", "CodecAdapter", "StreamPolicy", "content_length"]

#: :attr:`CodecActions.kind`: start the request / answer ``error.status_hint`` on it / reset the stream.
START: Final = 0
REFUSE: Final = 1
RESET: Final = 2
_LAST_STREAM: Final = 2**31 - 1
#: SETTINGS identifiers (RFC 9113 §6.5.2).
_ENABLE_PUSH: Final = 0x2
_MAX_CONCURRENT_STREAMS: Final = 0x3
_INITIAL_WINDOW_SIZE: Final = 0x4
_MAX_FRAME_SIZE: Final = 0x5
_MAX_HEADER_LIST_SIZE: Final = 0x6


class CodecActions:
    """What an adapter does for a new stream's header block."""

    __slots__ = ("charge", "error", "goaway", "kind", "remaining", "request", "reset_code")

    def __init__(
        self,
        kind: int,
        *,
        reset_code: int = NO_ERROR,
        charge: bool = False,
        request: RequestReceived | None = None,
        error: DownstreamError | None = None,
        remaining: int = -1,
        goaway: bool = False,
    ) -> None:
        self.kind = kind
        #: RST_STREAM's code when ``kind`` is :data:`RESET`.
        self.reset_code = reset_code
        #: The reset costs one of the reset budget (refused or malformed streams: rapid reset's cheap cousins).
        self.charge = charge
        #: The request (``kind`` :data:`START`) or the refusal (``kind`` :data:`REFUSE`).
        self.request = request
        self.error = error
        #: Body bytes Content-Length announces (-1: none), for a codec that counts them (nghttp2's HTTP
        #: checks are off; ``h2`` counts them itself).
        self.remaining = remaining
        #: The connection reached ``max_requests`` with this one: start a graceful GOAWAY.
        self.goaway = goaway

    def __repr__(self) -> str:
        names = {START: "START", REFUSE: "REFUSE", RESET: "RESET"}
        return f"CodecActions({names.get(self.kind, self.kind)}, reset_code={self.reset_code}, charge={self.charge})"


def content_length(fields: Headers) -> int:
    """The request's Content-Length, -1 if it is not a number or its values differ."""
    values = {value for name, value in fields if name == b"content-length"}
    if len(values) != 1:
        return -1
    (value,) = values
    return int(value) if value.isdigit() and len(value) < 19 else -1


class CodecAdapter(Protocol):
    """What :meth:`StreamPolicy.feed` asks of a codec adapter (``H2Server``, ``NgH2Server``)."""

    def _receive(self, data: bytes, events: list[H2Event], opened: int) -> bool:
        """Hand ``data``, in which ``opened`` header blocks open new streams, to the codec and translate what
        it reports into ``events``; False once the connection has ended."""
        ...

    def _before_opening(self) -> None:
        """Near the concurrency limit, before each piece of a read that opens one stream."""
        ...

    def _end(self, code: int, reason: str, events: list[H2Event]) -> None:
        """Our connection error: GOAWAY with ``code``, then :class:`ConnectionEnded`."""
        ...


class StreamPolicy:
    """One connection's policy state: the frame gate and its budgets, the requests counted, the GOAWAY sent."""

    __slots__ = ("_dropped", "_fresh", "announced", "gate", "goaway_last", "highest", "late", "limits", "requests")

    def __init__(self, limits: H2Limits) -> None:
        self.limits = limits
        self.gate = FrameGate(
            GateLimits(
                limits.max_frame_size,
                limits.max_header_block_bytes,
                limits.max_continuation_frames,
                limits.control_frame_budget,
                limits.reset_budget,
            )
        )
        self.requests = 0
        self.late = 0  # streams opened after our GOAWAY
        self.highest = 0  # the highest stream that reached the policy
        self.goaway_last: int | None = None  # the last stream our final GOAWAY named
        self.announced = False  # a GOAWAY went out (the first step, or the final one)
        self._fresh: set[int] = set()  # streams opened by the read being fed
        self._dropped: set[int] = set()  # ... and reset by it too

    def settings(self) -> list[tuple[int, int]]:
        """What our SETTINGS frame advertises, as ``(identifier, value)``; MAX_CONCURRENT_STREAMS first (the
        nghttp2 adapter adds it to the frame itself)."""
        limits = self.limits
        return [
            (_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams),
            (_INITIAL_WINDOW_SIZE, limits.initial_window),
            (_MAX_HEADER_LIST_SIZE, limits.max_header_list_size),
            (_MAX_FRAME_SIZE, limits.max_frame_size),
            (_ENABLE_PUSH, 0),
        ]

    def feed(self, adapter: CodecAdapter, data: bytes, open_streams: int, events: list[H2Event]) -> list[H2Event]:
        """Hand a read from the visitor to ``adapter``, whose table holds ``open_streams`` streams, through the
        frame gate; return ``events`` without those of the streams opened and reset within this read: the edge
        never starts work for them (rapid reset sends exactly that)."""
        self._fresh.clear()
        self._dropped.clear()
        scan = self.gate.scan(data)
        if scan.error is not None:
            data = data[: scan.accepted]
        opened = scan.opened
        if opened and open_streams + len(opened) > self.limits.max_concurrent_streams:
            # Near the limit: one opened stream at a time, so that each stream one too many is refused (by
            # on_request) before the next reaches the codec, whose own limit would end the whole connection.
            start = 0
            for cut in opened:
                adapter._before_opening()
                if not self._received(adapter, data[start:cut], events, 1):
                    return self._reported(events)
                start = cut
            data = data[start:]
            opened = []
        if self._received(adapter, data, events, len(opened)) and scan.error is not None:
            adapter._end(*scan.error, events)
        return self._reported(events)

    def _received(self, adapter: CodecAdapter, data: bytes, events: list[H2Event], opened: int) -> bool:
        if not adapter._receive(data, events, opened):
            return False
        over = self.over_budget()
        if over is not None:
            adapter._end(*over, events)
            return False
        return True

    def _reported(self, events: list[H2Event]) -> list[H2Event]:
        if not self._dropped:
            return events
        dropped = self._dropped
        return [e for e in events if getattr(e, "stream_id", 0) not in dropped]

    def on_stream_reset(self, stream_id: int, code: int, refused: bool, events: list[H2Event]) -> None:
        """A stream in the adapter's table was reset (by the visitor, the codec or the adapter): tell the edge
        (:class:`StreamReset`) unless it refused the request (``refused``) or never heard of the stream."""
        if stream_id in self._fresh:
            self._dropped.add(stream_id)  # opened in the read being fed: its events are dropped
        elif not refused:
            events.append(StreamReset(stream_id, code))

    def on_request(
        self, stream_id: int, fields: Headers, ended: bool, open_streams: int, checked: int = 0
    ) -> CodecActions:
        """A complete request header block opened ``stream_id`` (``ended``: END_STREAM came with it) while
        ``open_streams`` streams are in the adapter's table; ``checked``: what the codec checked of its bytes
        (``request_from_fields``). A stream started or refused (the adapter puts it in its table) counts as
        opened by the read being fed (:meth:`on_stream_reset`)."""
        if stream_id > self.highest:
            self.highest = stream_id
        limits = self.limits
        if self.goaway_last is not None and stream_id > self.goaway_last:
            # After our GOAWAY: the client retries elsewhere; more than could have been in flight costs.
            self.late += 1
            return CodecActions(RESET, reset_code=REFUSED_STREAM, charge=self.late > limits.max_concurrent_streams)
        if open_streams >= limits.max_concurrent_streams:
            return CodecActions(RESET, reset_code=REFUSED_STREAM, charge=True)
        self.gate.refund_control()  # a request is useful work
        try:
            request = request_from_fields(fields, ended, limits.head_limits, checked)
        except StreamMalformed:
            return CodecActions(RESET, reset_code=PROTOCOL_ERROR, charge=True)
        except DownstreamError as exc:
            self._fresh.add(stream_id)
            return CodecActions(REFUSE, error=exc)
        remaining = -1
        if request.body == "length":
            remaining = content_length(request.headers)
            if remaining < 0:
                return CodecActions(RESET, reset_code=PROTOCOL_ERROR, charge=True)
        self.requests += 1
        self._fresh.add(stream_id)
        return CodecActions(START, request=request, remaining=remaining, goaway=self.requests >= limits.max_requests)

    def on_response_ended(self, request_ended: bool) -> int | None:
        """A response's last frame is queued: one reset is allowed again. Returns RST_STREAM's code to send
        after it (NO_ERROR: the answer came before the request's end, RFC 9113 §8.1), or None."""
        self.gate.refund_reset()
        return None if request_ended else NO_ERROR

    def goaway(self, *, final: bool, ended: bool) -> int | None:
        """The last stream id a GOAWAY NO_ERROR names now, or None when none is due (see H2Server.goaway)."""
        if ended or self.goaway_last is not None or (self.announced and not final):
            return None
        self.announced = True
        if not final:
            return _LAST_STREAM
        self.goaway_last = self.highest
        return self.highest

    def closed(self, ended: bool, open_streams: int) -> bool:
        """Nothing more will happen on the connection."""
        return ended or (self.goaway_last is not None and not open_streams)

    def over_budget(self) -> tuple[int, str] | None:
        """The connection error due once resets outpaced completed responses by more than the budget."""
        if self.gate.resets_left < 0:
            return ENHANCE_YOUR_CALM, "too many streams reset, malformed or refused (rapid reset)"
        return None
