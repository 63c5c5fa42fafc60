"""Sans-IO HTTP/2 server connection for visitors: bytes in, events out, bytes to send. This module is the
contract both codecs keep and the choice between them (:func:`new_h2_server`); :class:`H2Server` over the
``h2`` library is in ``proto/http2_h2.py``, :class:`NgH2Server` over libnghttp2 in ``proto/http2_ng.py``.

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
from originlock.proto.http2_h2 import H2Server
from originlock.proto.http2_ng import NgH2Server

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
