"""The sans-IO HTTP/2 server over libnghttp2 (frames, HPACK, stream states and flow control in C): the same
interface, events and limits as :class:`~originlock.proto.http2.H2Server` (that module's docstring is the
contract; what differs is below), at a fraction of the CPU per request.

How it is driven. ``feed`` hands the read to ``nghttp2_session_mem_recv``; ``data_to_send`` drains
``nghttp2_session_mem_send``; no I/O callbacks. The session is the compiled shim or its cffi fallback
(``proto/nghttp2_sessions.py`` says which and how they differ); their callbacks only record events, handled
here in order after ``mem_recv`` returned: a request's header block (its fields checked by
``request_from_fields`` as for the ``h2`` codec), END_STREAM, a visitor's RST_STREAM or GOAWAY, a window
update, a chunk of request body, a closed stream. Response fields go to nghttp2 as one array (nghttp2 copies
them; the shim can build it from an origin's fields itself, :meth:`NgH2Server.send_raw_response`); response
bytes leave the stream in ``data_to_send``, not in ``send_data``.

The policy stays ours, shared with the ``h2`` codec (``proto/http2_policy.py``: the frame gate sees every
frame header before nghttp2 does, malformed versus refused, the concurrency, request and reset budgets);
nghttp2's own HTTP checks are off, so both codecs refuse the same requests the same way, and Content-Length
against the DATA is counted here. Three things are kept from nghttp2 on purpose:

- SETTINGS_MAX_CONCURRENT_STREAMS is added to the SETTINGS frame nghttp2 serialised, not given to it: at
  its limit nghttp2 ends the whole connection, where ours refuses the one stream (REFUSED_STREAM, which a
  client may retry; a browser may open streams before our SETTINGS reach it).
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

from typing import Any, Final

from originlock.proto import nghttp2_cffi
from originlock.proto import nghttp2_lib as ng
from originlock.proto.events import Headers
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
from originlock.proto.http2_request import FIELDS_CHECKED, PSEUDO_CHECKED, response_fields
from originlock.proto.http2_wire import goaway_code, goaway_frame, with_setting
from originlock.proto.nghttp2_sessions import (
    CFFI,
    SHIM,
    available,
    codec_description,
    new_session,
    session_kind,
    set_session_kind,
)

__all__ = ["CFFI", "SHIM", "NgH2Server", "available", "codec_description", "session_kind", "set_session_kind"]

#: The shim's ``respond``: these fields need ``response_fields`` (_ngshim.c's NEEDS_PYTHON).
_NEEDS_PYTHON: Final = 1
#: The request checks the shim made of a header block's bytes (EV_REQUEST's flags above the frame's byte).
_CHECKED: Final = FIELDS_CHECKED | PSEUDO_CHECKED


class _Stream:
    """The edge's view of one request stream (its response bytes wait in the session)."""

    __slots__ = ("end_pending", "provider", "refused", "remaining", "request_ended", "response_ended", "unacked")

    def __init__(self, refused: bool) -> None:
        self.refused = refused
        self.request_ended = False
        self.response_ended = False
        self.end_pending = False  # END_STREAM was asked for, behind the queued bytes
        self.provider = False  # the response was submitted with the data provider
        self.unacked = 0  # body bytes handed out and not yet acknowledged
        self.remaining = -1  # body bytes Content-Length still announces (-1: none announced)


class NgH2Server:
    """One visitor's HTTP/2 connection over libnghttp2 (see :class:`~originlock.proto.http2.H2Server`).

    Args:
        session: :data:`SHIM` or :data:`CFFI`; None: :func:`session_kind`'s choice.

    Raises:
        RuntimeError: libnghttp2 cannot be loaded (check :func:`available` first).
    """

    codec = "nghttp2"

    def __init__(
        self, limits: H2Limits = DEFAULT_H2_LIMITS, *, scheme: bytes = b"https", session: str | None = None
    ) -> None:
        kind = session or session_kind()
        if kind is None:
            raise RuntimeError(f"libnghttp2 is not available: {ng.unavailable_reason()}")
        self.session = kind
        self._s: Any = new_session(kind, limits.max_header_list_size)
        self._raw = kind == SHIM  # the session builds response fields itself (send_raw_response)
        shim = ng.load_shim() if kind == SHIM else None
        self._strerror: Any = shim.strerror if shim is not None else nghttp2_cffi.strerror
        self.scheme = scheme
        self._policy = StreamPolicy(limits)
        self._gate = self._policy.gate
        self._streams: dict[int, _Stream] = {}
        self._out: list[bytes] = []
        self._events: list[H2Event] = []  # the running feed's list (for _pull's connection end)
        self._visitor_resets: set[int] = set()
        self._ended = False
        self._pull_later = False  # a WINDOW_UPDATE or SETTINGS came while a response was sending
        self._seen = 0  # streams the running mem_recv opened that reached _on_request

    # -- connection ----------------------------------------------------------------------------

    def initiate(self) -> None:
        entries = self._policy.settings()
        self._check(self._s.settings(entries[1:]), "submit_settings")
        # MAX_CONCURRENT_STREAMS (entries[0]) is advertised, not given to nghttp2 (see the module docstring)
        self._pull()
        if len(self._out) != 1:
            raise RuntimeError("nghttp2 did not queue exactly our SETTINGS frame")
        self._out[0] = with_setting(self._out[0], entries[0][0], entries[0][1])
        window = self._policy.limits.connection_window
        if window > 65535:
            self._check(self._s.set_local_window(window), "set_local_window_size")

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def closed(self) -> bool:
        return self._policy.closed(self._ended, len(self._streams))

    def data_to_send(self) -> bytes:
        if not self._ended:
            self._pull()
        out = self._out
        if len(out) == 1:
            return out.pop()
        joined = b"".join(out)
        out.clear()
        return joined

    def goaway(self, *, final: bool = True) -> None:
        last = self._policy.goaway(final=final, ended=self._ended)
        if last is None:
            return
        # serialised here, not submitted to nghttp2 (see the module docstring)
        self._pull()  # frames already queued go first
        self._out.append(goaway_frame(last, NO_ERROR))

    def feed(self, data: bytes) -> list[H2Event]:
        if self._ended:
            return []
        events: list[H2Event] = []
        self._events = events
        return self._policy.feed(self, data, len(self._streams), events)

    # -- streams -------------------------------------------------------------------------------

    def send_response(self, stream_id: int, status: int, headers: Headers, *, end_stream: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.response_ended or self._ended:
            return
        fields = response_fields(status, headers)
        s = self._s
        if status < 200:
            self._check(s.submit_headers(stream_id, fields), "submit_headers")
            return
        if end_stream and stream.request_ended:
            self._check(s.submit_response(stream_id, fields, False), "submit_response")
            self._response_ended(stream_id, stream)
            return
        # With a body, or ending before the request did: the provider sends END_STREAM (and then the
        # NO_ERROR reset, which must follow the response: nghttp2 sends resets before queued HEADERS).
        stream.provider = True
        stream.end_pending = end_stream
        self._check(s.submit_response(stream_id, fields, True), "submit_response")
        if end_stream:
            s.push(stream_id, b"", True)

    def send_raw_response(
        self, stream_id: int, status: int, headers: Headers, dropped: tuple[bytes, ...], extra: tuple[bytes, bytes]
    ) -> bool:
        """``send_response(end_stream=False)`` for fields not in HTTP/2 form yet (an origin's, as parsed), in
        one call into the shim: names lower-cased and checked, those in ``dropped`` left out, values checked,
        ``extra`` added last, which are the fields ``response_fields`` would make of them. False when they
        need that general path (a Connection field, a field it refuses, an interim status, the cffi
        session): nothing was queued then."""
        if not self._raw:
            return False
        stream = self._streams.get(stream_id)
        if stream is None or stream.response_ended or self._ended:
            return True
        rv = self._s.respond(stream_id, status, headers, dropped, extra[0], extra[1])
        if rv == _NEEDS_PYTHON:
            return False
        stream.provider = True
        stream.end_pending = False
        self._check(rv, "submit_response")
        return True

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.response_ended or stream.end_pending or self._ended or not stream.provider:
            return
        stream.end_pending = end_stream
        self._s.push(stream_id, data, end_stream)

    def buffered(self, stream_id: int) -> int:
        return int(self._s.buffered(stream_id)) if stream_id in self._streams else 0

    def acknowledge(self, stream_id: int, size: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or self._ended or size <= 0:
            return
        size = min(size, stream.unacked)
        stream.unacked -= size
        if size:
            self._s.consume(stream_id, size)

    def reset(self, stream_id: int, error_code: int = CANCEL) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None or self._ended:
            return
        self._s.rst(stream_id, error_code)
        self._release(stream_id, stream)

    # -- inside --------------------------------------------------------------------------------

    def _check(self, rv: int, what: str) -> None:
        if rv < 0:
            raise RuntimeError(f"nghttp2_{what}: {self._strerror(rv)}")

    def _pull(self) -> None:
        """Move what nghttp2 queued into ``_out``; finish the responses the provider ended; notice the end of
        the session."""
        s = self._s
        while True:
            rv, frames, ended, data_frames, goaway, closed = s.send()
            if frames:
                self._out.append(frames)
            for _ in range(data_frames):
                self._gate.refund_control()
            if rv < 0:
                self._finish(PROTOCOL_ERROR, f"nghttp2: {self._strerror(rv)}", self._events)
                return
            if goaway and not self._ended and not s.want_read():
                # nghttp2 found a connection error and sent its GOAWAY (our own GOAWAYs are not submitted to it)
                code = goaway_code(b"".join(self._out))
                self._finish(PROTOCOL_ERROR if code is None else code, "nghttp2 ended the connection", self._events)
                return
            again = False
            for stream_id in ended:  # before the closes: a stream both ends finished closes as it ends
                stream = self._streams.get(stream_id)
                if stream is not None and self._response_ended(stream_id, stream):
                    again = True
            if closed:
                self._dispatch(closed, self._events)
            if not again or self._ended:
                return

    def _receive(self, data: bytes, events: list[H2Event], opened: int) -> bool:
        """Feed ``data`` (in which ``opened`` header blocks open new streams) to nghttp2, handle the events,
        then collect what it queued; False once the connection has ended."""
        self._seen = 0
        if data:
            rv, received, overflow = self._s.recv(data)
            if received:
                self._dispatch(received, events)
            if rv < 0:
                if self._ended:  # a visitor GOAWAY, or our own end, before the failure
                    return False
                if overflow:
                    reason = "a header list above SETTINGS_MAX_HEADER_LIST_SIZE (HPACK bomb?)"
                    self._end(ENHANCE_YOUR_CALM, reason, events, pull=False)
                    return False
                flood = rv in (ng.ERR_FLOODED, ng.ERR_TOO_MANY_CONTINUATIONS)
                self._end(ENHANCE_YOUR_CALM if flood else PROTOCOL_ERROR, f"nghttp2: {self._strerror(rv)}", events)
                return False
        if self._ended:
            return False
        if opened > self._seen:
            # Streams opened on the wire that nghttp2 reset before the edge heard of them (a stream error in
            # their HEADERS frame): each costs a reset, as ours do.
            for _ in range(opened - self._seen):
                self._gate.charge_reset()
        if self._pull_later:
            # A WINDOW_UPDATE or SETTINGS came: held-back bytes may go now; say which streams moved.
            self._pull_later = False
            s = self._s
            before = {sid: s.buffered(sid) for sid, stream in self._streams.items() if stream.provider}
            self._pull()
            for sid, size in before.items():
                if size and sid in self._streams and s.buffered(sid) < size:
                    events.append(WindowOpened(sid))
        else:
            self._pull()
        return not self._ended

    def _before_opening(self) -> None:
        """Send nghttp2's queued frames (resets of refused streams, finished responses) first, so that its count
        of open streams never reaches the advertised limit (above it nghttp2 ends the connection) before the
        policy refuses."""
        self._pull()

    def _dispatch(self, received: list[tuple[int, int, int, Any]], events: list[H2Event]) -> None:
        """Act on the session's events of one read, in the order nghttp2 produced them."""
        for kind, stream_id, value, obj in received:
            if self._ended:
                return
            if kind == nghttp2_cffi.EV_CHUNK:
                self._on_data(stream_id, obj, events)
            elif kind == nghttp2_cffi.EV_REQUEST:
                self._on_request(stream_id, obj, value, events)
            elif kind in (nghttp2_cffi.EV_DATA_END, nghttp2_cffi.EV_HEADERS):
                self._on_ended(stream_id, events)  # (trailers are dropped)
            elif kind == nghttp2_cffi.EV_CLOSE:
                self._on_close(stream_id, value, events)
            elif kind == nghttp2_cffi.EV_RST:
                self._visitor_resets.add(stream_id)  # charged by the gate already
            elif kind == nghttp2_cffi.EV_GOAWAY:
                self._finish(value, "the visitor sent GOAWAY", events)
            elif kind == nghttp2_cffi.EV_WINDOW and not self._pull_later:
                self._pull_later = any(stream.provider for stream in self._streams.values())

    def _on_request(self, stream_id: int, fields: Headers, flags: int, events: list[H2Event]) -> None:
        """``flags``: the HEADERS frame's, with the shim's checks (``request_from_fields``'s ``checked``)."""
        self._seen += 1
        ended = flags & ng.FLAG_END_STREAM != 0
        act = self._policy.on_request(stream_id, fields, ended, len(self._streams), flags & _CHECKED)
        if act.kind == RESET:
            self._s.rst(stream_id, act.reset_code)
            if act.charge:
                self._gate.charge_reset()
            return
        stream = self._streams[stream_id] = _Stream(refused=act.kind != START)
        if act.request is None:  # REFUSE: the edge answers the 4xx; the body is dropped
            stream.request_ended = ended
            if act.error is not None:
                events.append(RequestRefused(stream_id, act.error))
            return
        stream.remaining = act.remaining
        events.append(RequestStarted(stream_id, act.request))
        if ended:
            stream.request_ended = True
            events.append(StreamEnded(stream_id))
        if act.goaway:
            self.goaway()

    def _on_data(self, stream_id: int, data: bytes, events: list[H2Event]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.refused or stream.response_ended:
            self._s.consume(stream_id, len(data))  # nobody wants these bytes
            return
        if stream.remaining >= 0:
            stream.remaining -= len(data)
            if stream.remaining < 0:
                self._malformed(stream_id, stream, events)
                return
        stream.unacked += len(data)
        events.append(StreamData(stream_id, data))

    def _on_ended(self, stream_id: int, events: list[H2Event]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.request_ended:
            return
        if stream.remaining > 0:
            self._malformed(stream_id, stream, events)
            return
        stream.request_ended = True
        if not stream.refused:
            events.append(StreamEnded(stream_id))

    def _malformed(self, stream_id: int, stream: _Stream, events: list[H2Event]) -> None:
        """The body does not match Content-Length (RFC 9113 §8.1.1): a stream error."""
        del self._streams[stream_id]
        self._s.rst(stream_id, PROTOCOL_ERROR)
        self._gate.charge_reset()
        self._release(stream_id, stream)
        self._policy.on_stream_reset(stream_id, PROTOCOL_ERROR, False, events)

    def _on_close(self, stream_id: int, code: int, events: list[H2Event]) -> None:
        visitor = stream_id in self._visitor_resets
        if visitor:
            self._visitor_resets.discard(stream_id)
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        if not visitor:
            self._gate.charge_reset()  # nghttp2 reset it (a stream error it found)
        self._release(stream_id, stream)
        self._policy.on_stream_reset(stream_id, code, stream.refused, events)

    def _response_ended(self, stream_id: int, stream: _Stream) -> bool:
        """The response's last frame is queued; True if a reset was queued after it."""
        stream.response_ended = True
        stream.end_pending = False
        del self._streams[stream_id]
        if stream.provider:
            stream.provider = False  # its queue went with its last byte
        self._release(stream_id, stream)
        code = self._policy.on_response_ended(stream.request_ended)
        if code is not None:
            self._s.rst(stream_id, code)
            return True
        return False

    def _release(self, stream_id: int, stream: _Stream) -> None:
        if stream.provider:
            self._s.forget(stream_id)
        if stream.unacked:
            self._s.consume(stream_id, stream.unacked)
            stream.unacked = 0

    def _end(self, code: int, reason: str, events: list[H2Event], *, pull: bool = True) -> None:
        """Our connection error: GOAWAY with ``code`` after what nghttp2 had queued (``pull``: unless the
        session failed inside a callback)."""
        if not self._ended:
            last = self._policy.highest  # the last stream the edge may have worked on
            if pull:
                self._pull()
                if self._ended:
                    return  # nghttp2 ended it first, with its own GOAWAY
            self._out.append(goaway_frame(last, code))
        self._finish(code, reason, events)

    def _finish(self, code: int, reason: str, events: list[H2Event]) -> None:
        if self._ended:
            return
        self._ended = True
        self._streams.clear()
        events.append(ConnectionEnded(code, reason))
