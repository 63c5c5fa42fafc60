"""Sans-IO HTTP/2 server connection for visitors, over the ``h2`` library: bytes in, events out, bytes to send.

Theory of operation. The edge's h2 protocol object makes one :class:`H2Server` per visitor connection that
negotiated ALPN ``h2``, calls :meth:`~H2Server.initiate` once, then :meth:`~H2Server.feed` with every read,
and writes :meth:`~H2Server.data_to_send` after every call that may queue frames (``initiate``, ``feed``,
``send_response``, ``send_data``, ``acknowledge``, ``reset``, ``goaway``): nothing here writes. ``feed``
never raises on anything the visitor sends: a connection error queues GOAWAY and yields
:class:`ConnectionEnded`; a stream error queues RST_STREAM. Events (plain ``__slots__`` classes like
``proto/events.py``):

- :class:`RequestStarted` ``(stream_id, request)``: a :class:`~originlock.proto.events.RequestReceived`
  built as the HTTP/1 parser builds it (``proto/http2_request.py``): version ``b"2"``, origin-form target
  from ``:path`` (normalised), no pseudo-header fields, a Host field from ``:authority`` when the request
  had none (a Host that differs from ``:authority`` makes the request malformed, RFC 9113 §8.3.1: the WAF,
  the router and the origin must not see two hosts), ``body`` ``none`` / ``length`` / ``chunked``;
  ``expect_continue`` as HTTP/1 sets it (answer it with ``send_response(sid, 100, [], end_stream=False)``
  or not at all). A ``none`` body is followed by :class:`StreamEnded` at once.
- :class:`RequestRefused` ``(stream_id, error)``: a well-formed HTTP/2 request the edge refuses as it would
  over HTTP/1 (bad target, 414, 431, CONNECT...): the edge answers ``error.status_hint`` on the stream with
  its usual response writer. No other event follows for that stream; its body is dropped.
- :class:`StreamData` ``(stream_id, data)``: request body bytes. Flow control reopens the visitor's
  windows only when the edge calls :meth:`~H2Server.acknowledge` for them, so a slow origin backs the
  visitor up. Bytes not yet acknowledged when a stream ends early are acknowledged here.
- :class:`StreamEnded` ``(stream_id)``: the request body is complete (trailers are dropped).
- :class:`StreamReset` ``(stream_id, error_code)``: the visitor reset the stream, or a stream error reset
  it (bad framing, Content-Length not matching the DATA): stop working on it; later calls for it are no-ops.
- :class:`WindowOpened` ``(stream_id)``: response bytes held back by flow control were sent (see
  :meth:`~H2Server.buffered`): the edge may read more from the origin.
- :class:`ConnectionEnded` ``(error_code, reason)``: GOAWAY from the visitor, or our connection error.
  Write what :meth:`~H2Server.data_to_send` returns, then close; ``closed`` is True.

Which refusals are which. What RFC 9113 §8.1.1 calls malformed (pseudo-header fields, upper-case names,
connection-specific fields, TE other than ``trailers``, CR/LF/NUL, Host against ``:authority``: checked in
``proto/http2_request.py``; Content-Length against the DATA: checked by ``h2``) is a stream error
PROTOCOL_ERROR (RST_STREAM; ``h2`` alone would end the whole connection for some of it). What is valid
HTTP/2 but refused by the edge's HTTP rules is a :class:`RequestRefused`, so the visitor gets the same 4xx
and message as over HTTP/1.

Limits (:class:`H2Limits`; nginx's defaults where nginx has the knob):

- 128 concurrent streams (nginx ``http2_max_concurrent_streams``). A stream above it is refused with
  RST_STREAM REFUSED_STREAM, safe for the client to retry (RFC 9113 §8.7); ``h2`` alone would end the
  connection, which hurts a browser that opened streams before our SETTINGS arrived.
- 64 KiB stream receive window (nginx advertises its ``http2_body_preread_size``, 64k) and a 1 MiB
  connection window: the request-body bytes the edge may hold unacknowledged per connection.
- Header list: 64 KiB decoded (SETTINGS_MAX_HEADER_LIST_SIZE, ``h2``'s default, twice the HTTP/1 head limit
  since HPACK counts 32 bytes per field). Above it the HPACK decoder stops (so an HPACK bomb, a small block
  that decodes to a huge list, never grows memory) and the connection ends ENHANCE_YOUR_CALM: the
  compression state is lost mid-block. Below it, the HTTP/1 limits apply per request (16 KiB URL 414,
  32 KiB head 431, ``proto/http1.py``'s ``Limits``) as :class:`RequestRefused`.
- Header block on the wire: 64 KiB and 16 CONTINUATION frames (a 64 KiB block needs 4 of 16 KiB), counted
  by ``proto/http2_gate.py`` before ``h2`` buffers anything (CVE-2024-27316): ENHANCE_YOUR_CALM.
- 16 KiB frames (the protocol's minimum maximum); a longer frame is refused on its header.
- Rapid reset (CVE-2023-44487): each RST_STREAM from the visitor, each refused stream and each stream error
  costs one of 100 tokens, and each completed response earns one back: beyond, GOAWAY ENHANCE_YOUR_CALM.
  So resets can outpace completed responses by at most 100 per connection; a stream opened and reset in
  the same read never reaches the edge at all, and a later reset tells it to stop (:class:`StreamReset`).
- Control frames (SETTINGS, PING, PRIORITY, WINDOW_UPDATE, empty DATA, unknown types): 1000 tokens, one
  earned back per request opened and per DATA frame sent; beyond, ENHANCE_YOUR_CALM (ping/settings/empty
  frame floods, CVE-2019-9512/9515/9518). The queued ACKs are bounded by the same count.
- 1000 requests per connection (nginx ``keepalive_requests``), then a graceful GOAWAY.
- Unknown SETTINGS identifiers are dropped before ``h2`` stores them (it would keep every one of the 65536).
- The HPACK encoder's table (our response fields) stays at 4 KiB whatever SETTINGS_HEADER_TABLE_SIZE the
  visitor sends (``h2`` would keep up to that much).
- Window overflow (WINDOW_UPDATE past 2^31-1) and sending beyond our windows are ``h2``'s
  FLOW_CONTROL_ERROR.

Graceful shutdown: :meth:`~H2Server.goaway` sends GOAWAY NO_ERROR naming the last stream received; streams
the visitor opens after it are refused (REFUSED_STREAM, retried by the client on a new connection; beyond
``max_concurrent_streams`` of them, more than any client had in flight, each costs a reset); open ones
finish; ``closed`` turns True when the last one ends. ``goaway(final=False)`` first sends RFC 9113 §6.8's
announcement (the largest stream identifier), so that requests already on their way are served rather
than refused; the edge calls ``goaway()`` a round trip later. ``h2`` has no graceful GOAWAY (its
``close_connection`` stops all streams), so that frame is serialised here. A GOAWAY *from* the visitor
ends the connection at once (``h2`` refuses to send after it).

Dependency notes: ``h2`` reports a body longer or shorter than Content-Length, a non-numeric Content-Length
and a stream beyond its concurrency setting as connection errors; ``proto/http2_conn.py`` (overrides of
``h2`` internals, pinned ``h2<5``) turns the first two into stream errors and moves ``h2``'s own concurrency
check to twice the advertised limit, enforcing the advertised one here; it also drops unknown SETTINGS
before ``h2`` stores them. ``h2``'s inbound header validation is off: ``proto/http2_request.py`` does it
in the pass over the fields it makes anyway (10 µs less per request). The tests pin each behaviour.

What the edge keeps doing itself: timeouts (idle, header, body), TLS and ALPN; pausing its reads from the
visitor while its transport's write buffer is above its high-water mark (the visitor chooses its own
windows, up to 2 GiB, so flow control alone does not bound what the edge queues for a visitor that does
not read); answering :class:`RequestRefused`; acknowledging :class:`StreamData`; resetting streams it
abandons.

Cost: ``feed`` + ``send_response`` + ``send_data`` of a small GET take about 65-70 µs of CPU per request on
the (loaded) development box, nearly all of it in ``h2`` and ``hpack`` (state machines, HPACK, frame
objects); ``python bench/h2_vs_nginx.py --floor`` measures it. Hence the other codec with this interface,
:class:`~originlock.proto.http2_ng.NgH2Server` over libnghttp2 (about 19 µs, compiled): :func:`new_h2_server`
picks it whenever the library loads, and this class is the fallback.
"""

from __future__ import annotations

from collections import deque

from h2 import events as h2e
from h2.config import H2Configuration
from h2.connection import ConnectionState
from h2.exceptions import H2Error
from h2.settings import SettingCodes
from hpack import HPACKError
from hyperframe.frame import GoAwayFrame

from originlock.proto.events import Headers
from originlock.proto.http2_conn import ENCODER_TABLE_SIZE, CeilingSettings, ServerConnection
from originlock.proto.http2_events import (
    CANCEL,
    DEFAULT_H2_LIMITS,
    ENHANCE_YOUR_CALM,
    NO_ERROR,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    ConnectionEnded,
    H2Event,
    H2Limits,
    RequestRefused,
    RequestStarted,
    StreamData,
    StreamEnded,
    StreamReset,
    WindowOpened,
)
from originlock.proto.http2_ng import NgH2Server
from originlock.proto.http2_policy import RESET, START, StreamPolicy
from originlock.proto.http2_request import response_fields

__all__ = [
    "CANCEL",
    "DEFAULT_H2_LIMITS",
    "ENHANCE_YOUR_CALM",
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "REFUSED_STREAM",
    "ConnectionEnded",
    "H2Event",
    "H2Limits",
    "H2Server",
    "NgH2Server",
    "RequestRefused",
    "RequestStarted",
    "StreamData",
    "StreamEnded",
    "StreamReset",
    "WindowOpened",
    "h2_codec",
    "new_h2_server",
]


class _Stream:
    """The edge's view of one request stream."""

    __slots__ = ("end_pending", "pending", "pending_size", "refused", "request_ended", "response_ended", "unacked")

    def __init__(self, refused: bool) -> None:
        self.refused = refused
        self.request_ended = False
        self.response_ended = False
        self.end_pending = False  # END_STREAM waits behind held-back data
        self.pending: deque[bytes] = deque()
        self.pending_size = 0
        self.unacked = 0  # body bytes handed out and not yet acknowledged


class H2Server:
    """One visitor's HTTP/2 connection (server side); see the module docstring.

    Args:
        limits: the connection's limits.
        scheme: the scheme of the connection (``https``: h2 is only offered over TLS), kept for the edge
            (X-Forwarded-Proto, CF-Visitor); a request's own ``:scheme`` is checked present, never trusted.
    """

    def __init__(self, limits: H2Limits = DEFAULT_H2_LIMITS, *, scheme: bytes = b"https") -> None:
        self._limits = limits
        self.scheme = scheme
        config = H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=False,  # request_from_fields() does it, in the pass it makes anyway
            normalize_inbound_headers=False,
            validate_outbound_headers=False,  # response_fields() did it
            normalize_outbound_headers=False,
        )
        conn = ServerConnection(config)
        settings = CeilingSettings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
                SettingCodes.INITIAL_WINDOW_SIZE: limits.initial_window,
                SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
                SettingCodes.MAX_FRAME_SIZE: limits.max_frame_size,
                SettingCodes.ENABLE_PUSH: 0,
            },
        )
        settings.ceiling = 2 * limits.max_concurrent_streams
        conn.local_settings = settings
        conn.max_inbound_frame_size = limits.max_frame_size
        conn.decoder.max_header_list_size = limits.max_header_list_size
        self._conn = conn
        self._policy = StreamPolicy(limits)
        self._gate = self._policy.gate
        self._streams: dict[int, _Stream] = {}
        self._out: list[bytes] = []
        self._ended = False
        self._fresh: set[int] = set()  # streams opened by the bytes being fed
        self._dropped: set[int] = set()  # ... and reset by them too

    # -- connection ----------------------------------------------------------------------------

    def initiate(self) -> None:
        """Queue the server preface (SETTINGS) and open the connection window to ``connection_window``."""
        self._conn.initiate_connection()
        extra = self._limits.connection_window - 65535
        if extra > 0:
            self._conn.increment_flow_control_window(extra)

    @property
    def open_streams(self) -> int:
        """Streams the edge has been told about and that have not ended both ways (nor been reset)."""
        return len(self._streams)

    @property
    def closed(self) -> bool:
        """Nothing more will happen: write :meth:`data_to_send`, then close the connection."""
        return self._policy.closed(self._ended, len(self._streams))

    def data_to_send(self) -> bytes:
        """Every frame queued so far, b"" if none."""
        queued = self._conn.data_to_send()
        if self._out:
            self._out.append(queued)
            queued = b"".join(self._out)
            self._out.clear()
        return queued

    def goaway(self, *, final: bool = True) -> None:
        """Graceful shutdown: GOAWAY NO_ERROR naming the last stream received; streams opened after it are
        refused; open ones finish.

        Args:
            final: False sends the first of the two steps RFC 9113 §6.8 suggests: GOAWAY naming the largest
                stream identifier, which tells the visitor to open no more streams while those already on
                their way are still served; call ``goaway()`` again about a round trip later (the edge
                has the clock) to name the last one.
        """
        policy = self._policy
        # h2's count includes streams it reset before the policy heard of them
        policy.highest = max(policy.highest, self._conn.highest_inbound_stream_id)
        last = policy.goaway(final=final, ended=self._ended)
        if last is None:
            return
        self._out.append(self._conn.data_to_send())  # frames already queued go first
        self._out.append(GoAwayFrame(0, last_stream_id=last, error_code=NO_ERROR).serialize())

    def feed(self, data: bytes) -> list[H2Event]:
        """Handle bytes from the visitor; return the events they caused. Never raises for their content.

        A stream opened and reset within the same ``data`` yields no event at all: the edge never starts
        work for it (rapid reset sends exactly that).
        """
        if self._ended:
            return []
        events: list[H2Event] = []
        self._fresh.clear()
        self._dropped.clear()
        self._feed(data, events)
        if self._dropped:
            dropped = self._dropped
            events = [e for e in events if getattr(e, "stream_id", 0) not in dropped]
        return events

    def _feed(self, data: bytes, events: list[H2Event]) -> None:
        scan = self._gate.scan(data)
        if scan.error is not None:
            data = data[: scan.accepted]
        opened = scan.opened
        if opened and len(self._streams) + len(opened) > self._limits.max_concurrent_streams:
            # Near the limit: hand h2 one opened stream at a time, refusing each that is one too many
            # before the next arrives, so h2's own check (a connection error) never fires.
            start = 0
            for cut in opened:
                if not self._receive(data[start:cut], events):
                    return
                start = cut
            data = data[start:]
        if self._receive(data, events) and scan.error is not None:
            self._end(*scan.error, events)

    # -- streams -------------------------------------------------------------------------------

    def send_response(self, stream_id: int, status: int, headers: Headers, *, end_stream: bool) -> None:
        """Queue a response head (a 1xx one needs ``end_stream=False``). Hop-by-hop fields are dropped,
        names lower-cased. A no-op for a stream that is reset or unknown.

        Raises:
            UnsafeHeaderValue: a field or the status cannot be sent (see ``response_fields``).
        """
        stream = self._streams.get(stream_id)
        if stream is None or stream.response_ended or self._ended:
            return
        self._conn.send_headers(stream_id, response_fields(status, headers), end_stream=end_stream)
        if end_stream:
            self._response_ended(stream_id, stream)

    def send_raw_response(
        self, stream_id: int, status: int, headers: Headers, dropped: tuple[bytes, ...], extra: tuple[bytes, bytes]
    ) -> bool:
        """libnghttp2's shortcut for fields not in HTTP/2 form yet (``NgH2Server.send_raw_response``); this
        codec has none: always False (nothing queued), the caller uses :meth:`send_response`."""
        return False

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Queue response-body bytes; what flow control does not allow yet is held back (see :meth:`buffered`)
        and sent when the visitor opens its windows. A no-op for a stream that is reset or unknown."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.response_ended or stream.end_pending or self._ended:
            return
        if data:
            stream.pending.append(data)
            stream.pending_size += len(data)
        stream.end_pending = end_stream
        self._flush(stream_id, stream)

    def buffered(self, stream_id: int) -> int:
        """Response-body bytes held back by flow control on the stream (0 for an unknown stream)."""
        stream = self._streams.get(stream_id)
        return 0 if stream is None else stream.pending_size

    def acknowledge(self, stream_id: int, size: int) -> None:
        """``size`` bytes of the stream's body were consumed: let the visitor send as much again."""
        stream = self._streams.get(stream_id)
        if stream is None or self._ended or size <= 0:
            return  # a stream's unacknowledged bytes were acknowledged when it ended early
        size = min(size, stream.unacked)
        stream.unacked -= size
        self._acknowledge(stream_id, size)

    def reset(self, stream_id: int, error_code: int = CANCEL) -> None:
        """Abandon the stream (RST_STREAM). A no-op for a stream that is already closed or unknown."""
        stream = self._streams.pop(stream_id, None)
        if stream is None or self._ended:
            return
        self._conn.reset_stream(stream_id, error_code)
        self._release(stream_id, stream)

    # -- inside --------------------------------------------------------------------------------

    def _receive(self, data: bytes, events: list[H2Event]) -> bool:
        """Feed ``data`` to h2 and translate; False once the connection has ended."""
        conn = self._conn
        try:
            received = conn.receive_data(data)
        except (H2Error, HPACKError) as exc:
            code = int(getattr(exc, "error_code", 0) or PROTOCOL_ERROR)
            if conn.state_machine.state is not ConnectionState.CLOSED:  # an error before h2 queued its GOAWAY
                conn.close_connection(code)
            self._finish(code, f"{type(exc).__name__}: {exc}", events)
            return False
        flushed = False
        for event in received:
            if isinstance(event, h2e.DataReceived):
                self._on_data(event, events)
            elif isinstance(event, h2e.RequestReceived):
                self._on_request(event, events)
            elif isinstance(event, h2e.StreamEnded):
                self._on_ended(event.stream_id, events)
            elif isinstance(event, h2e.WindowUpdated):
                flushed = True
            elif isinstance(event, h2e.RemoteSettingsChanged):
                flushed = True
                if conn.encoder.header_table_size > ENCODER_TABLE_SIZE:
                    # h2 sizes our HPACK encoder's table to what the visitor allows: response fields would be
                    # kept up to that size (up to 4 GiB) per connection. Using less is always allowed.
                    conn.encoder.header_table_size = ENCODER_TABLE_SIZE
            elif isinstance(event, h2e.StreamReset):
                if not event.remote_reset:  # h2 reset it for a stream error (the gate charged RST_STREAM)
                    self._gate.charge_reset()
                self._stream_reset(event.stream_id, int(event.error_code or 0), events)
            elif isinstance(event, h2e.ConnectionTerminated):
                self._finish(int(event.error_code or 0), "the visitor sent GOAWAY", events)
                return False
        if conn.stream_errors:
            for stream_id, _reason in conn.stream_errors:
                self._stream_reset(stream_id, PROTOCOL_ERROR, events)
                if not self._gate.charge_reset():
                    conn.stream_errors.clear()
                    self._end(ENHANCE_YOUR_CALM, "too many malformed or refused streams", events)
                    return False
            conn.stream_errors.clear()
        if flushed:
            for stream_id, stream in list(self._streams.items()):
                before = stream.pending_size
                if before or stream.end_pending:
                    self._flush(stream_id, stream)
                    if stream.pending_size < before:
                        events.append(WindowOpened(stream_id))
        over = self._policy.over_budget()
        if over is not None:
            self._end(*over, events)
            return False
        return True

    def _stream_reset(self, stream_id: int, code: int, events: list[H2Event]) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        self._release(stream_id, stream)
        if stream_id in self._fresh:
            self._dropped.add(stream_id)  # opened in this same read: the edge never hears of it
        elif not stream.refused:
            events.append(StreamReset(stream_id, code))

    def _on_request(self, event: h2e.RequestReceived, events: list[H2Event]) -> None:
        stream_id = event.stream_id
        conn = self._conn
        act = self._policy.on_request(
            stream_id, event.headers or [], event.stream_ended is not None, len(self._streams)
        )
        if act.kind == RESET:
            conn.reset_stream(stream_id, act.reset_code)
            if act.reset_code == PROTOCOL_ERROR:
                conn.stream_errors.append((stream_id, "malformed request"))  # charged with h2's own stream errors
            elif act.charge:
                self._gate.charge_reset()
            return
        self._streams[stream_id] = _Stream(refused=act.kind != START)
        self._fresh.add(stream_id)
        if act.request is not None:
            events.append(RequestStarted(stream_id, act.request))  # h2's StreamEnded follows when ended
        elif act.error is not None:
            events.append(RequestRefused(stream_id, act.error))
        if act.goaway:
            self.goaway()

    def _on_data(self, event: h2e.DataReceived, events: list[H2Event]) -> None:
        stream_id = event.stream_id
        data = event.data or b""
        flow = event.flow_controlled_length or 0
        stream = self._streams.get(stream_id)
        if stream is None or stream.refused or stream.response_ended:
            self._acknowledge(stream_id, flow)  # nobody wants these bytes
            return
        if flow > len(data):
            self._acknowledge(stream_id, flow - len(data))  # padding
        if data:
            stream.unacked += len(data)
            events.append(StreamData(stream_id, data))

    def _on_ended(self, stream_id: int, events: list[H2Event]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.request_ended = True  # (a stream whose response has ended is no longer in the table)
        if not stream.refused:
            events.append(StreamEnded(stream_id))

    def _flush(self, stream_id: int, stream: _Stream) -> None:
        conn = self._conn
        pending = stream.pending
        while pending:
            window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if window <= 0:
                return
            chunk = pending[0]
            if len(chunk) > window:
                piece = chunk[:window]
                pending[0] = chunk[window:]
            else:
                piece = pending.popleft()
            stream.pending_size -= len(piece)
            last = stream.end_pending and not pending
            conn.send_data(stream_id, piece, end_stream=last)
            self._gate.refund_control()
            if last:
                self._response_ended(stream_id, stream)
                return
        if stream.end_pending:
            conn.end_stream(stream_id)
            self._response_ended(stream_id, stream)

    def _response_ended(self, stream_id: int, stream: _Stream) -> None:
        stream.response_ended = True
        stream.end_pending = False
        code = self._policy.on_response_ended(stream.request_ended)
        if code is not None:
            # The answer is complete before the request (an early error, a refused request): the edge no
            # longer wants the body (RFC 9113 §8.1 allows RST_STREAM NO_ERROR here).
            self._conn.reset_stream(stream_id, code)
        del self._streams[stream_id]
        self._release(stream_id, stream)

    def _release(self, stream_id: int, stream: _Stream) -> None:
        """A stream left the table: drop what it held back, give its unacknowledged bytes back."""
        stream.pending.clear()
        stream.pending_size = 0
        if stream.unacked:
            self._acknowledge(stream_id, stream.unacked)
            stream.unacked = 0

    def _acknowledge(self, stream_id: int, size: int) -> None:
        self._conn.acknowledge_received_data(size, stream_id)  # a closed stream: the connection window only

    def _end(self, code: int, reason: str, events: list[H2Event]) -> None:
        """Our connection error: GOAWAY with ``code`` (h2 is still open: its own errors end in _receive)."""
        self._conn.close_connection(code)
        self._finish(code, reason, events)

    def _finish(self, code: int, reason: str, events: list[H2Event]) -> None:
        self._ended = True
        self._streams.clear()
        events.append(ConnectionEnded(code, reason))


def h2_codec() -> str:
    """The codec :func:`new_h2_server` uses in this process, said in ``originlock serve``'s banner:
    ``nghttp2 1.52.0 (compiled shim)``, ``nghttp2 1.52.0 (cffi ABI mode, ...: why not the shim)``, or ``h2``
    with why libnghttp2 is not used."""
    from originlock.proto import http2_ng, nghttp2_lib

    described = http2_ng.codec_description()
    if described is not None:
        return described
    return f"h2 (pure Python, several times the CPU per request: {nghttp2_lib.unavailable_reason()})"


def new_h2_server(limits: H2Limits = DEFAULT_H2_LIMITS, *, scheme: bytes = b"https") -> H2Server | NgH2Server:
    """The visitor connection's HTTP/2 server: over libnghttp2 when it loads (``proto/http2_ng.py``, through
    the compiled shim or cffi), else over ``h2`` (:class:`H2Server`); all keep the same contract, limits and
    defences."""
    from originlock.proto import http2_ng

    if http2_ng.session_kind() is not None:
        return http2_ng.NgH2Server(limits, scheme=scheme)
    return H2Server(limits, scheme=scheme)
