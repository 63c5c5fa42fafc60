"""The HTTP/2 server over the ``h2`` library: the fallback codec, for where libnghttp2 does not load (or
``ORIGINLOCK_H2_CODEC=h2``). ``proto/http2.py``'s docstring is the contract it keeps (events, refusals,
limits, graceful shutdown); ``proto/http2_conn.py`` holds the overrides of ``h2``'s internals it needs.
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
    ConnectionEnded,
    H2Event,
    H2Limits,
    RequestRefused,
    RequestStarted,
    StreamData,
    StreamEnded,
    WindowOpened,
)
from originlock.proto.http2_policy import RESET, START, StreamPolicy
from originlock.proto.http2_request import response_fields

__all__ = ["H2Server"]


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
    """One visitor's HTTP/2 connection (server side); the contract is ``proto/http2.py``'s docstring.

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
        self._policy = StreamPolicy(limits)
        advertised = {SettingCodes(code): value for code, value in self._policy.settings()}
        settings = CeilingSettings(client=False, initial_values=advertised)
        settings.ceiling = 2 * limits.max_concurrent_streams
        conn.local_settings = settings
        conn.max_inbound_frame_size = limits.max_frame_size
        conn.decoder.max_header_list_size = limits.max_header_list_size
        self._conn = conn
        self._gate = self._policy.gate
        self._streams: dict[int, _Stream] = {}
        self._out: list[bytes] = []
        self._ended = False

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
        return self._policy.feed(self, data, len(self._streams), [])

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

    def _receive(self, data: bytes, events: list[H2Event], opened: int) -> bool:
        """Feed ``data`` to h2 and translate (``CodecAdapter``; h2 reports the streams it resets itself)."""
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
        return True

    def _before_opening(self) -> None:
        """Nothing to do (``CodecAdapter``): h2's own concurrency check is at twice the advertised limit
        (``proto/http2_conn.py``), out of reach while the policy refuses at the limit."""

    def _stream_reset(self, stream_id: int, code: int, events: list[H2Event]) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        self._release(stream_id, stream)
        self._policy.on_stream_reset(stream_id, code, stream.refused, events)

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
