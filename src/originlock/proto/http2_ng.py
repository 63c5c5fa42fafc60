"""The sans-IO HTTP/2 server over libnghttp2 (frames, HPACK, stream states and flow control in C): the same
interface, events and limits as :class:`~originlock.proto.http2.H2Server` (that module's docstring is the
contract; what differs is below), at a fraction of the CPU per request.

How it is driven. ``feed`` hands the read to ``nghttp2_session_mem_recv``; ``data_to_send`` drains
``nghttp2_session_mem_send``; no I/O callbacks. What reaches Python, each crossing ~1 µs through libffi:
one callback per header block start and per header field (the fields are collected, then checked by
``request_from_fields`` as for the ``h2`` codec), one per received frame (a request's header block is
complete, END_STREAM, a visitor's RST_STREAM or GOAWAY, a window update), one per chunk of request body, one
per closed stream, and one per response DATA frame (the data provider copies the stream's pending bytes
into nghttp2's buffer, so response bytes leave the stream in ``data_to_send``, not in ``send_data``).
Response fields go to nghttp2 as one array built from one joined buffer (nghttp2 copies them).

The policy stays ours, shared with the ``h2`` codec: :class:`~originlock.proto.http2_gate.FrameGate` sees
every frame header before nghttp2 does (frame size, CONTINUATION floods, rapid reset, control-frame floods),
``request_from_fields`` decides malformed versus refused (nghttp2's own HTTP checks are off, so both codecs
refuse the same requests the same way; Content-Length against the DATA is counted here), and the
concurrency, request and reset budgets are counted here. Three things are kept from nghttp2 on purpose:

- SETTINGS_MAX_CONCURRENT_STREAMS is added to the SETTINGS frame nghttp2 serialised, not given to it: at
  its limit nghttp2 ends the whole connection, where ours refuses the one stream (REFUSED_STREAM).
- Our GOAWAY frames are serialised here: after a GOAWAY it sent, nghttp2 would ignore new streams without a
  word, where both codecs refuse them (REFUSED_STREAM) and count them.
- The edge acknowledges body bytes itself (no automatic WINDOW_UPDATE; :meth:`acknowledge` is
  ``nghttp2_session_consume``).

nghttp2's options bound what it keeps: no closed streams kept for priorities, a 4 KiB HPACK encoder table
whatever the visitor allows, at most 32 entries per SETTINGS frame, 1000 queued ACKs (SETTINGS/PING floods).

Differences from the ``h2`` codec, all allowed by RFC 9113 and pinned by tests run against both codecs:
Debian's libnghttp2 stops a header block at 8 CONTINUATION frames (ENHANCE_YOUR_CALM) and decodes HPACK as
frames arrive (a block may hit the 64 KiB decoded-list limit before the wire limit); a SETTINGS frame with
more than 32 entries is ENHANCE_YOUR_CALM; an undecodable header block is COMPRESSION_ERROR; DATA beyond a
stream's window (but not the connection's) resets the stream FLOW_CONTROL_ERROR. Connection errors nghttp2
finds end with its own GOAWAY, whose code is read from the frames it queued.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from originlock.errors import DownstreamError
from originlock.proto import nghttp2_lib as ng
from originlock.proto.events import Headers
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
from originlock.proto.http2_gate import FrameGate, GateLimits
from originlock.proto.http2_request import StreamMalformed, request_from_fields, response_fields

__all__ = ["NgH2Server", "available"]

_ENCODER_TABLE_SIZE: Final = 4096
_MAX_SETTINGS: Final = 32
_MAX_OUTBOUND_ACK: Final = 1000


class _Stream:
    """The edge's view of one request stream."""

    __slots__ = (
        "deferred",
        "end_pending",
        "pending",
        "pending_size",
        "provider",
        "refused",
        "remaining",
        "request_ended",
        "response_ended",
        "unacked",
    )

    def __init__(self, refused: bool) -> None:
        self.refused = refused
        self.request_ended = False
        self.response_ended = False
        self.end_pending = False  # END_STREAM waits behind the pending bytes
        self.provider = False  # the response was submitted with our data provider
        self.deferred = False  # the provider said "nothing yet": resume it when bytes come
        self.pending: deque[bytes] = deque()
        self.pending_size = 0
        self.unacked = 0  # body bytes handed out and not yet acknowledged
        self.remaining = -1  # body bytes Content-Length still announces (-1: none announced)


class _Binding:
    """The library, the shared callbacks (one set per process: each server finds itself from ``user_data``),
    the options and the data provider."""

    def __init__(self, loaded: ng.NgLib) -> None:
        ffi, lib = loaded.ffi, loaded.lib
        self.ffi = ffi
        self.lib = lib
        self.version = loaded.version
        # The backend's functions themselves: FFI's methods are Python wrappers around them (a frame per call).
        from_handle = ffi._backend.from_handle
        unpack = ffi._backend.unpack
        memmove = ffi.memmove

        def failed(exc_type: Any, exc: BaseException | None, tb: Any) -> None:
            # A bug of ours inside a callback: the session fails (CALLBACK_FAILURE); keep the reason.
            user = tb.tb_frame.f_locals.get("user") if tb is not None else None
            if user is not None:
                from_handle(user)._failure = f"{exc_type.__name__}: {exc}"

        def on_header(
            session: Any, frame: Any, name: Any, namelen: int, value: Any, valuelen: int, flags: int, user: Any
        ) -> int:
            server: NgH2Server = from_handle(user)
            size = server._block_size + namelen + valuelen + 32
            server._block_size = size
            if size > server._limits.max_header_list_size:
                server._failure = "a header list above SETTINGS_MAX_HEADER_LIST_SIZE (HPACK bomb?)"
                server._failure_code = ENHANCE_YOUR_CALM
                return ng.ERR_CALLBACK_FAILURE
            server._fields.append((unpack(name, namelen), unpack(value, valuelen)))
            return 0

        def on_begin_headers(session: Any, frame: Any, user: Any) -> int:
            # A block nghttp2 found malformed midway never reaches on_frame_recv: start each one afresh.
            server: NgH2Server = from_handle(user)
            server._fields = []
            server._block_size = 0
            return 0

        def on_frame_recv(session: Any, frame: Any, user: Any) -> int:
            hd = frame.hd
            from_handle(user)._on_frame(hd.type, hd.flags, hd.stream_id, frame)
            return 0

        def on_data(session: Any, flags: int, stream_id: int, data: Any, length: int, user: Any) -> int:
            from_handle(user)._on_data(stream_id, data, length)
            return 0

        def on_close(session: Any, stream_id: int, error_code: int, user: Any) -> int:
            from_handle(user)._on_close(stream_id, error_code)
            return 0

        def read(session: Any, stream_id: int, buf: Any, length: int, flags: Any, source: Any, user: Any) -> int:
            server: NgH2Server = from_handle(user)
            stream = server._streams.get(stream_id)
            if stream is None:
                return ng.ERR_DEFERRED  # reset meanwhile; nghttp2 drops the stream's item
            pending = stream.pending
            done = 0
            while pending and done < length:
                chunk = pending[0]
                room = length - done
                if len(chunk) > room:
                    memmove(buf + done, chunk[:room], room)
                    pending[0] = chunk[room:]
                    done = length
                else:
                    memmove(buf + done, chunk, len(chunk))
                    pending.popleft()
                    done += len(chunk)
            stream.pending_size -= done
            if not pending and stream.end_pending:
                flags[0] |= ng.DATA_FLAG_EOF
                server._response_ended(stream_id, stream)
            elif not done:
                stream.deferred = True
                return ng.ERR_DEFERRED
            server._gate.refund_control()
            return done

        def callback(kind: str, function: Any) -> Any:
            return ffi.callback(kind, function, error=ng.ERR_CALLBACK_FAILURE, onerror=failed)

        on_header_c = callback("nghttp2_on_header_callback", on_header)
        on_begin_headers_c = callback("nghttp2_on_begin_headers_callback", on_begin_headers)
        on_frame_recv_c = callback("nghttp2_on_frame_recv_callback", on_frame_recv)
        on_data_c = callback("nghttp2_on_data_chunk_recv_callback", on_data)
        on_close_c = callback("nghttp2_on_stream_close_callback", on_close)
        read_c = callback("nghttp2_data_source_read_callback", read)
        self.callbacks_keep = (on_header_c, on_begin_headers_c, on_frame_recv_c, on_data_c, on_close_c, read_c)
        holder = ffi.new("nghttp2_session_callbacks **")
        if lib.nghttp2_session_callbacks_new(holder) != 0:
            raise MemoryError("nghttp2_session_callbacks_new")
        callbacks = holder[0]  # one per process, never freed
        lib.nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers_c)
        lib.nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header_c)
        lib.nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv_c)
        lib.nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_c)
        lib.nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_close_c)
        self.callbacks = callbacks
        option_holder = ffi.new("nghttp2_option **")
        if lib.nghttp2_option_new(option_holder) != 0:
            raise MemoryError("nghttp2_option_new")
        option = option_holder[0]
        lib.nghttp2_option_set_no_auto_window_update(option, 1)
        lib.nghttp2_option_set_no_closed_streams(option, 1)
        # Request checks are request_from_fields' (the same 400s as HTTP/1 and as the h2 codec), Content-Length
        # against the DATA is counted here.
        lib.nghttp2_option_set_no_http_messaging(option, 1)
        lib.nghttp2_option_set_max_deflate_dynamic_table_size(option, _ENCODER_TABLE_SIZE)
        lib.nghttp2_option_set_max_outbound_ack(option, _MAX_OUTBOUND_ACK)
        lib.nghttp2_option_set_max_settings(option, _MAX_SETTINGS)
        self.option = option
        self.provider = ffi.new("nghttp2_data_provider *")
        self.provider.read_callback = read_c
        # Per-request conversions through the backend with their types resolved once (FFI's methods parse the
        # type string and add a Python frame per call).
        backend = ffi._backend
        self.newp = backend.newp
        self.cast = backend.cast
        self.from_buffer = backend.from_buffer
        self.unpack = backend.unpack
        self.nv_array = ffi.typeof("nghttp2_nv[]")
        self.uintptr = ffi.typeof("uintptr_t")
        self.char_array = ffi.typeof("char[]")


_binding: _Binding | None = None


def _bind() -> _Binding | None:
    global _binding
    if _binding is None:
        loaded = ng.load()
        if loaded is not None:
            _binding = _Binding(loaded)
    return _binding


def available() -> str | None:
    """libnghttp2's version if this codec can run, else None (``nghttp2_lib.unavailable_reason`` says why)."""
    binding = _bind()
    return None if binding is None else binding.version


def _goaway_code(frames: bytes) -> int | None:
    """The error code of the last GOAWAY among serialised ``frames`` (the rare path: nghttp2 ended)."""
    at, code = 0, None
    while at + 9 <= len(frames):
        length = int.from_bytes(frames[at : at + 3])
        if frames[at + 3] == ng.FRAME_GOAWAY and at + 17 <= len(frames):
            code = int.from_bytes(frames[at + 13 : at + 17])
        at += 9 + length
    return code


def _content_length(fields: Headers) -> int:
    """The request's Content-Length, -1 if it is not a number or its values differ."""
    values = {value for name, value in fields if name == b"content-length"}
    if len(values) != 1:
        return -1
    (value,) = values
    return int(value) if value.isdigit() and len(value) < 19 else -1


def _goaway_frame(last_stream: int, code: int) -> bytes:
    return b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + last_stream.to_bytes(4) + code.to_bytes(4)


class NgH2Server:
    """One visitor's HTTP/2 connection over libnghttp2 (see :class:`~originlock.proto.http2.H2Server`).

    Raises:
        RuntimeError: libnghttp2 cannot be loaded (check :func:`available` first).
    """

    codec = "nghttp2"

    def __init__(self, limits: H2Limits = DEFAULT_H2_LIMITS, *, scheme: bytes = b"https") -> None:
        binding = _bind()
        if binding is None:
            raise RuntimeError(f"libnghttp2 is not available: {ng.unavailable_reason()}")
        self._b = binding
        self._lib = binding.lib
        self._limits = limits
        self.scheme = scheme
        ffi = binding.ffi
        self._handle = ffi.new_handle(self)
        holder = ffi.new("nghttp2_session **")
        if self._lib.nghttp2_session_server_new2(holder, binding.callbacks, self._handle, binding.option) != 0:
            raise MemoryError("nghttp2_session_server_new2")
        self._session = ffi.gc(holder[0], self._lib.nghttp2_session_del)
        self._sent = ffi.new("const char **")  # mem_send's answer (per server: threads may each run one)
        self._gate = FrameGate(
            GateLimits(
                limits.max_frame_size,
                limits.max_header_block_bytes,
                limits.max_continuation_frames,
                limits.control_frame_budget,
                limits.reset_budget,
            )
        )
        self._streams: dict[int, _Stream] = {}
        self._out: list[bytes] = []
        self._events: list[H2Event] = []  # where the callbacks put events (the running feed's list)
        self._fields: Headers = []  # the header block being decoded
        self._block_size = 0
        self._failure: str | None = None
        self._failure_code = PROTOCOL_ERROR
        self._visitor_resets: set[int] = set()
        self._ended = False
        self._goaway_last: int | None = None
        self._announced = False
        self._requests = 0
        self._highest = 0
        self._pull_later = False  # a WINDOW_UPDATE or SETTINGS came while bytes were held back
        self._seen = 0  # streams the running mem_recv opened that reached _on_request
        self._late = 0  # streams opened after our GOAWAY
        self._blob = b""  # the response fields being submitted (nghttp2 copies them)
        self._fresh: set[int] = set()
        self._dropped: set[int] = set()

    # -- connection ----------------------------------------------------------------------------

    def initiate(self) -> None:
        limits = self._limits
        entries = [
            (ng.SETTINGS_INITIAL_WINDOW_SIZE, limits.initial_window),
            (ng.SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_list_size),
            (ng.SETTINGS_MAX_FRAME_SIZE, limits.max_frame_size),
            (ng.SETTINGS_ENABLE_PUSH, 0),
        ]
        ffi, lib = self._b.ffi, self._lib
        iv = ffi.new("nghttp2_settings_entry[]", entries)
        self._check(lib.nghttp2_submit_settings(self._session, 0, iv, len(entries)), "submit_settings")
        # MAX_CONCURRENT_STREAMS is advertised but not given to nghttp2: at its limit nghttp2 ends the whole
        # connection, where the limit is ours to enforce with REFUSED_STREAM (a stream the client may retry;
        # a browser may open streams before our SETTINGS reach it). So the entry is added to the frame here.
        self._pull()
        frame = self._out[0]
        if len(self._out) != 1 or frame[3] != ng.FRAME_SETTINGS or int.from_bytes(frame[:3]) + 9 != len(frame):
            raise RuntimeError("nghttp2 did not queue exactly our SETTINGS frame")
        entry = ng.SETTINGS_MAX_CONCURRENT_STREAMS.to_bytes(2) + limits.max_concurrent_streams.to_bytes(4)
        self._out[0] = (len(frame) - 9 + 6).to_bytes(3) + frame[3:] + entry
        if limits.connection_window > 65535:
            rv = lib.nghttp2_session_set_local_window_size(self._session, 0, 0, limits.connection_window)
            self._check(rv, "set_local_window_size")

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def closed(self) -> bool:
        return self._ended or (self._goaway_last is not None and not self._streams)

    def data_to_send(self) -> bytes:
        if self._ended:
            out = b"".join(self._out)
            self._out.clear()
            return out
        self._pull()
        if len(self._out) == 1:
            return self._out.pop()
        out = b"".join(self._out)
        self._out.clear()
        return out

    def goaway(self, *, final: bool = True) -> None:
        if self._ended or self._goaway_last is not None or (self._announced and not final):
            return
        self._announced = True
        # Serialised here, not submitted: nghttp2 would ignore streams opened after it without a word, where
        # both codecs refuse them (REFUSED_STREAM) and count them.
        last = self._highest if final else 2**31 - 1
        if final:
            self._goaway_last = last
        self._pull()  # frames already queued go first
        self._out.append(_goaway_frame(last, NO_ERROR))

    def feed(self, data: bytes) -> list[H2Event]:
        if self._ended:
            return []
        events: list[H2Event] = self._events
        self._events = events = [*events] if events else []
        self._fresh.clear()
        self._dropped.clear()
        try:
            self._feed(data, events)
        finally:
            self._events = []
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
            # Near the limit: one opened stream at a time, with nghttp2's queued frames (resets of refused
            # streams, finished responses) sent in between, so that nghttp2's count of open streams never
            # reaches the advertised limit (above it nghttp2 ends the connection) before ours refuses.
            start = 0
            for cut in opened:
                self._pull()
                if not self._receive(data[start:cut], events, 1):
                    return
                start = cut
            data = data[start:]
            opened = []
        if self._receive(data, events, len(opened)) and scan.error is not None:
            self._end(*scan.error, events)

    # -- streams -------------------------------------------------------------------------------

    def send_response(self, stream_id: int, status: int, headers: Headers, *, end_stream: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.response_ended or self._ended:
            return
        fields = response_fields(status, headers)
        nva = self._nva(fields)
        lib = self._lib
        if status < 200:
            rv = lib.nghttp2_submit_headers(
                self._session, 0, stream_id, self._b.ffi.NULL, nva, len(fields), self._b.ffi.NULL
            )
            self._check(rv, "submit_headers")
            return
        if end_stream and stream.request_ended:
            self._check(
                lib.nghttp2_submit_response(self._session, stream_id, nva, len(fields), self._b.ffi.NULL),
                "submit_response",
            )
            self._response_ended(stream_id, stream)
            return
        # With a body, or ending before the request did: the provider sends END_STREAM (and then the
        # NO_ERROR reset, which must follow the response: nghttp2 sends resets before queued HEADERS).
        stream.provider = True
        stream.end_pending = end_stream
        self._check(
            lib.nghttp2_submit_response(self._session, stream_id, nva, len(fields), self._b.provider), "submit_response"
        )

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.response_ended or stream.end_pending or self._ended or not stream.provider:
            return
        if data:
            stream.pending.append(data)
            stream.pending_size += len(data)
        stream.end_pending = end_stream
        if stream.deferred:
            stream.deferred = False
            self._lib.nghttp2_session_resume_data(self._session, stream_id)

    def buffered(self, stream_id: int) -> int:
        stream = self._streams.get(stream_id)
        return 0 if stream is None else stream.pending_size

    def acknowledge(self, stream_id: int, size: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or self._ended or size <= 0:
            return
        size = min(size, stream.unacked)
        stream.unacked -= size
        if size:
            self._lib.nghttp2_session_consume(self._session, stream_id, size)

    def reset(self, stream_id: int, error_code: int = CANCEL) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None or self._ended:
            return
        self._lib.nghttp2_submit_rst_stream(self._session, 0, stream_id, error_code)
        self._release(stream_id, stream)

    # -- inside --------------------------------------------------------------------------------

    def _nva(self, fields: Headers) -> Any:
        """nghttp2_nv[] for ``fields``: one joined buffer, pointers into it (nghttp2 copies them)."""
        b = self._b
        blob = b"".join([part for field in fields for part in field])
        self._blob = blob  # alive until the submit call returned
        at = int(b.cast(b.uintptr, b.from_buffer(b.char_array, blob, False)))
        entries = []
        for name, value in fields:
            n, v = len(name), len(value)
            entries.append((at, at + n, n, v, 0))
            at += n + v
        return b.newp(b.nv_array, entries)

    def _check(self, rv: int, what: str) -> None:
        if rv < 0:
            reason = self._b.ffi.string(self._lib.nghttp2_strerror(rv)).decode()
            raise RuntimeError(f"nghttp2_{what}: {reason}")

    def _pull(self) -> None:
        """Move what nghttp2 queued into ``_out``; notice the end of the session."""
        lib, session, out, unpack = self._lib, self._session, self._sent, self._b.unpack
        goaway = False
        while True:
            size = lib.nghttp2_session_mem_send(session, out)
            if size <= 0:
                break
            frame = unpack(out[0], size)
            goaway = goaway or frame[3] == ng.FRAME_GOAWAY  # each answer is one frame (or its continuation)
            self._out.append(frame)
        if size < 0:
            self._finish(
                PROTOCOL_ERROR, "nghttp2: " + self._b.ffi.string(lib.nghttp2_strerror(size)).decode(), self._events
            )
        elif goaway and not self._ended and not lib.nghttp2_session_want_read(session):
            # nghttp2 found a connection error and sent its GOAWAY (our own GOAWAYs are not submitted to it)
            code = _goaway_code(b"".join(self._out))
            self._finish(PROTOCOL_ERROR if code is None else code, "nghttp2 ended the connection", self._events)

    def _receive(self, data: bytes, events: list[H2Event], opened: int) -> bool:
        """Feed ``data`` (in which ``opened`` header blocks open new streams) to nghttp2, then collect what it
        queued; False once the connection has ended."""
        lib = self._lib
        self._seen = 0
        if data:
            rv = lib.nghttp2_session_mem_recv(self._session, data, len(data))
            if rv < 0:
                if self._ended:  # a visitor GOAWAY or our own end, reached from a callback
                    return False
                reason = self._failure or "nghttp2: " + self._b.ffi.string(lib.nghttp2_strerror(rv)).decode()
                code = (
                    self._failure_code
                    if self._failure
                    else (
                        ENHANCE_YOUR_CALM if rv in (ng.ERR_FLOODED, ng.ERR_TOO_MANY_CONTINUATIONS) else PROTOCOL_ERROR
                    )
                )
                self._end(code, reason, events)
                return False
        if self._ended:
            return False
        if opened > self._seen:
            self._charge_unseen(opened - self._seen)
        if self._pull_later:
            # A WINDOW_UPDATE or SETTINGS came: held-back bytes may go now; say which streams moved.
            self._pull_later = False
            before = {sid: stream.pending_size for sid, stream in self._streams.items() if stream.pending_size}
            self._pull()
            for sid, size in before.items():
                stream = self._streams.get(sid)
                if stream is not None and stream.pending_size < size:
                    events.append(WindowOpened(sid))
        else:
            self._pull()
        if self._ended:
            return False
        if self._gate.resets_left < 0:
            self._end(ENHANCE_YOUR_CALM, "too many streams reset, malformed or refused (rapid reset)", events)
            return False
        return True

    def _on_frame(self, kind: int, flags: int, stream_id: int, frame: Any) -> None:
        events = self._events
        if kind == ng.FRAME_HEADERS:
            fields = self._fields
            if frame.headers.cat == ng.HCAT_REQUEST:
                self._on_request(stream_id, fields, flags & ng.FLAG_END_STREAM != 0, events)
            elif flags & ng.FLAG_END_STREAM:
                self._on_ended(stream_id, events)  # trailers: dropped
        elif kind == ng.FRAME_DATA:
            if flags & ng.FLAG_END_STREAM:
                self._on_ended(stream_id, events)
        elif kind == ng.FRAME_RST_STREAM:
            self._visitor_resets.add(stream_id)  # charged by the gate already
        elif kind == ng.FRAME_GOAWAY:
            self._finish(int(frame.goaway.error_code), "the visitor sent GOAWAY", events)
        elif kind in (ng.FRAME_WINDOW_UPDATE, ng.FRAME_SETTINGS) and any(
            stream.pending_size for stream in self._streams.values()
        ):
            self._pull_later = True

    def _charge_unseen(self, streams: int) -> None:
        """Streams opened on the wire that nghttp2 reset before the edge heard of them (a stream error in their
        HEADERS frame): each costs a reset, as ours do."""
        for _ in range(streams):
            self._gate.charge_reset()

    def _on_request(self, stream_id: int, fields: Headers, ended: bool, events: list[H2Event]) -> None:
        lib, session = self._lib, self._session
        self._seen += 1
        if stream_id > self._highest:
            self._highest = stream_id
        if self._goaway_last is not None and stream_id > self._goaway_last:
            lib.nghttp2_submit_rst_stream(session, 0, stream_id, REFUSED_STREAM)  # the client retries elsewhere
            self._late += 1
            if self._late > self._limits.max_concurrent_streams:  # more than could have been in flight
                self._gate.charge_reset()
            return
        if len(self._streams) >= self._limits.max_concurrent_streams:
            lib.nghttp2_submit_rst_stream(session, 0, stream_id, REFUSED_STREAM)
            self._gate.charge_reset()
            return
        self._gate.refund_control()
        try:
            request = request_from_fields(fields, ended, self._limits.head_limits)
        except StreamMalformed:
            lib.nghttp2_submit_rst_stream(session, 0, stream_id, PROTOCOL_ERROR)
            self._gate.charge_reset()
            return
        except DownstreamError as exc:
            stream = self._streams[stream_id] = _Stream(refused=True)
            stream.request_ended = ended
            self._fresh.add(stream_id)
            events.append(RequestRefused(stream_id, exc))
            return
        stream = _Stream(refused=False)
        if request.body == "length":
            remaining = _content_length(request.headers)
            if remaining < 0:
                lib.nghttp2_submit_rst_stream(session, 0, stream_id, PROTOCOL_ERROR)
                self._gate.charge_reset()
                return
            stream.remaining = remaining
        self._streams[stream_id] = stream
        self._fresh.add(stream_id)
        events.append(RequestStarted(stream_id, request))
        if ended:
            stream.request_ended = True
            events.append(StreamEnded(stream_id))
        self._requests += 1
        if self._requests >= self._limits.max_requests:
            self.goaway()

    def _on_data(self, stream_id: int, data: Any, length: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.refused or stream.response_ended:
            self._lib.nghttp2_session_consume(self._session, stream_id, length)  # nobody wants these bytes
            return
        if stream.remaining >= 0:
            stream.remaining -= length
            if stream.remaining < 0:
                self._malformed(stream_id, stream)
                return
        stream.unacked += length
        self._events.append(StreamData(stream_id, self._b.unpack(data, length)))

    def _on_ended(self, stream_id: int, events: list[H2Event]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.request_ended:
            return
        if stream.remaining > 0:
            self._malformed(stream_id, stream)
            return
        stream.request_ended = True
        if not stream.refused:
            events.append(StreamEnded(stream_id))

    def _malformed(self, stream_id: int, stream: _Stream) -> None:
        """The body does not match Content-Length (RFC 9113 §8.1.1): a stream error."""
        del self._streams[stream_id]
        self._lib.nghttp2_submit_rst_stream(self._session, 0, stream_id, PROTOCOL_ERROR)
        self._gate.charge_reset()
        self._release(stream_id, stream)
        if stream_id in self._fresh:
            self._dropped.add(stream_id)
        else:
            self._events.append(StreamReset(stream_id, PROTOCOL_ERROR))

    def _on_close(self, stream_id: int, code: int) -> None:
        visitor = stream_id in self._visitor_resets
        if visitor:
            self._visitor_resets.discard(stream_id)
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        if not visitor:
            self._gate.charge_reset()  # nghttp2 reset it (a stream error it found)
        self._release(stream_id, stream)
        if stream_id in self._fresh:
            self._dropped.add(stream_id)
        elif not stream.refused:
            self._events.append(StreamReset(stream_id, code))

    def _response_ended(self, stream_id: int, stream: _Stream) -> None:
        stream.response_ended = True
        stream.end_pending = False
        self._gate.refund_reset()
        if not stream.request_ended:
            self._lib.nghttp2_submit_rst_stream(self._session, 0, stream_id, NO_ERROR)
        del self._streams[stream_id]
        self._release(stream_id, stream)

    def _release(self, stream_id: int, stream: _Stream) -> None:
        stream.pending.clear()
        stream.pending_size = 0
        if stream.unacked:
            self._lib.nghttp2_session_consume(self._session, stream_id, stream.unacked)
            stream.unacked = 0

    def _end(self, code: int, reason: str, events: list[H2Event]) -> None:
        """Our connection error: GOAWAY with ``code`` after what nghttp2 had queued."""
        if not self._ended:
            last = self._highest  # the last stream the edge may have worked on
            if self._failure is None:
                self._pull()
                if self._ended:
                    return  # nghttp2 ended it first, with its own GOAWAY
            self._out.append(_goaway_frame(last, code))
        self._finish(code, reason, events)

    def _finish(self, code: int, reason: str, events: list[H2Event]) -> None:
        if self._ended:
            return
        self._ended = True
        self._streams.clear()
        events.append(ConnectionEnded(code, reason))
