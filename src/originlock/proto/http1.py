"""HTTP/1.1 message parsing over llhttp (``httptools``), strict, with the edge's size limits.

Both parsers are push parsers: ``feed(data)`` returns the events completed by ``data`` and raises an
:class:`~originlock.errors.EdgeError` on anything malformed. llhttp runs in its default strict mode
(``set_dangerous_leniencies`` is never called), which refuses, among others: Content-Length together with
Transfer-Encoding (RFC 9112 §6.3 step 3, request smuggling), duplicate Content-Length, invalid chunk sizes,
obs-fold (RFC 9112 §5.2) and bare LF line endings. On top of llhttp, the request parser refuses what
nginx refuses and llhttp lets through (docs/edge.md, "Requests the edge refuses"): a transfer coding
other than ``chunked`` (501), Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1), a tab after Content-Length,
underscore field names that read as a field the edge interprets, CONNECT and the asterisk form; and it
resolves the request-target (``proto/target.py``): an absolute-form target's authority replaces Host
(RFC 9112 §3.2.2) and the path is normalised, so everything after the parser sees one origin-form target.
Chunked trailers are dropped (as nginx does), and bytes after a request that closes the connection are
ignored rather than answered with 400.
"""

from __future__ import annotations

from typing import Final

import httptools

from originlock.errors import DownstreamError, HeadersTooLarge, MalformedRequest, UnsupportedTransferCoding, UriTooLong
from originlock.proto.events import BodyReceived, Event, Headers, RequestReceived, lower_name
from originlock.proto.http1_common import (
    _ENDED,
    _RELEASED_REQUESTS,
    _REQUEST_NAMES,
    _VERSIONS,
    DEFAULT_LIMITS,
    Limits,
)

# Re-exported (explicitly, for mypy): proto/http2_request.py counts and refuses field names alike.
from originlock.proto.http1_common import _LINE_OVERHEAD as _LINE_OVERHEAD
from originlock.proto.http1_common import _UNDERSCORED as _UNDERSCORED
from originlock.proto.http1_response import ResponseParser
from originlock.proto.target import normalize_target, resolve_target

_GET: Final = b"GET"

# The limits and the response parser live in their own modules (http1_common.py, http1_response.py) and
# are re-exported here, where the rest of the edge imports them from.
__all__ = ["DEFAULT_LIMITS", "Limits", "RequestParser", "ResponseParser"]


class RequestParser:
    """Parses requests sent by a visitor; one instance per downstream connection."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[Event] = []
        self._url = b""
        self._headers: Headers = []
        self._head_bytes = 0
        self._in_head = True
        self._upgrade = False
        #: The request llhttp stopped at (Upgrade + Connection: upgrade), and the bytes that followed its
        #: head in the same read: a WebSocket relay (edge/websocket.py) forwards them as they are.
        self.upgrade_request: RequestReceived | None = None
        self.upgrade_tail = b""
        #: The bytes being fed when they start with a new request head, else b"" (see _version).
        self._fresh = b""
        #: The last request head asked for the connection to close after it.
        self._closes = False
        #: A request that closes the connection has ended: anything after it is ignored (nginx serves that
        #: request and closes; llhttp would call the rest an error).
        self._closed = False

    # -- public ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Parse ``data``; return the events it completed.

        Raises:
            MalformedRequest: syntax error or ambiguous framing (answer 400, close the connection).
            HeadersTooLarge: the head exceeds ``max_request_head_bytes`` (431).
            UriTooLong: the URL exceeds ``max_url_bytes`` (414).
        """
        if self._closed:
            return []
        if self._upgrade:
            raise MalformedRequest("data after an Upgrade request is not supported")
        if self._in_head:
            self._fresh = data if self._head_bytes == 0 else b""
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # llhttp stops at an Upgrade request: nothing after it is HTTP/1.1 any more. The edge answers
            # it (or relays a WebSocket) and then closes (the caller sees keep_alive=False). Set here rather
            # than by asking llhttp (should_upgrade()) for every request.
            self._upgrade = True
            self.upgrade_tail = data[int(exc.args[0]) :]
            for event in reversed(self._events):  # the last head is the upgrade; earlier pipelined ones stay
                if isinstance(event, RequestReceived):
                    event.keep_alive = False
                    self.upgrade_request = event
                    break
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, DownstreamError):
                raise cause from None
            raise MalformedRequest(f"malformed request: {exc}") from exc
        except httptools.HttpParserError as exc:
            if self._closed:  # bytes after a request that closes the connection: not an error
                events, self._events = self._events, []
                return events
            raise MalformedRequest(f"malformed request: {exc}") from exc
        if self._in_head and self._head_bytes > self._limits.max_request_head_bytes:
            # Still inside a head after this many bytes: the URL check has already fired in on_url.
            raise HeadersTooLarge()
        events, self._events = self._events, []
        return events

    def complete_events(self) -> list[Event]:
        """After :meth:`feed` raised: the events of the messages it completed before the error, which are
        answered before the error is (a partly received message is dropped with the connection)."""
        events, self._events = self._events, []
        for end in range(len(events), 0, -1):
            if events[end - 1] is _ENDED:
                return events[:end]
        return []

    def release(self) -> None:
        """Drop the llhttp parser (the connection closed): it holds this object's bound callbacks, a
        reference cycle that would leave every closed connection to the cyclic garbage collector."""
        self._parser = _RELEASED_REQUESTS
        self._closed = True  # feed() returns nothing from now on
        self._events = []

    # -- llhttp callbacks ----------------------------------------------------------------------

    # No on_message_begin: the URL and header list are reset when a head completes, which saves one
    # Python callback per request (llhttp only calls the callbacks the object defines).

    def on_url(self, url: bytes) -> None:
        self._url += url  # one call per head in practice; b"" + url is url itself
        if len(self._url) > self._limits.max_url_bytes:
            raise UriTooLong()

    def on_header(self, name: bytes, value: bytes) -> None:
        # Fields after a chunked body (trailers) arrive here too: they are dropped, as nginx does. Kept, they
        # would land in the next pipelined request's fields (the list is that request's by then).
        if self._in_head:
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        headers = self._headers
        url = self._url
        # One pass over the fields for the size limit, Expect, the body framing and the refused spellings
        # (was three passes plus a generator; the request head is parsed for every request). llhttp has
        # already refused Content-Length with Transfer-Encoding, and repeated or non-final chunked.
        size = len(url) + _LINE_OVERHEAD * len(headers)
        expect = bad_expect = False
        framing = ""
        length_value = b""
        for name, value in headers:
            size += len(name) + len(value)
            if not _REQUEST_NAMES.may_be(name):
                continue
            lower = lower_name(name)
            if lower == b"expect":
                if value.lower() != b"100-continue":
                    bad_expect = True
                expect = True
            elif lower == b"transfer-encoding":
                if value.strip().lower() != b"chunked":  # llhttp lets "gzip, chunked" through
                    raise UnsupportedTransferCoding(f"transfer coding {value.decode('latin-1')!r} is not supported")
                framing = "chunked"
            elif lower == b"content-length":
                length_value = value
                framing = "length" if value.strip() != b"0" else "none"
            elif lower in _UNDERSCORED:
                raise MalformedRequest(f"header field name {name.decode('latin-1')!r} reads as one the edge interprets")
        if size > self._limits.max_request_head_bytes:
            raise HeadersTooLarge()
        if bad_expect:
            raise MalformedRequest("unsupported Expect value")
        if length_value and length_value[-1] in (32, 9):  # a space or a tab after the digits
            headers = self._trim_length(headers, length_value)
        parser = self._parser
        # GET read from the request line when this read starts with it (llhttp has validated the line):
        # get_method() builds a new bytes object through a Python-level call.
        method = _GET if self._fresh.startswith(b"GET ") else parser.get_method()
        version = self._version(method)
        if version != b"1.1" and version != b"1.0":  # HTTP/0.9 (no head at all) and anything above 1.1
            raise MalformedRequest(f"HTTP/{version.decode('latin-1')} is not supported")
        if framing == "chunked" and version == b"1.0":
            raise MalformedRequest("Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)")
        if method == b"CONNECT":
            raise MalformedRequest("CONNECT is not supported")
        if url and url[0] == 47:  # "/": origin-form (indexing is native compiled; a slice is an object)
            target = normalize_target(url)  # the same object when already normal (nearly always)
        else:
            target, headers = resolve_target(url, headers, version)
        keep_alive = bool(parser.should_keep_alive())
        self._closes = not keep_alive
        self._events.append(RequestReceived(method, target, version, headers, keep_alive, framing or "none", expect))
        self._url = b""
        self._headers = []

    @staticmethod
    def _trim_length(headers: Headers, value: bytes) -> Headers:
        """Content-Length followed by spaces is trimmed (nginx too); followed by a tab it is refused, as
        nginx refuses it (llhttp accepts both)."""
        if b"\t" in value:
            raise MalformedRequest("invalid Content-Length value")
        trimmed = value.rstrip(b" ")
        return [(name, trimmed if val is value else val) for name, val in headers]

    def _version(self, method: bytes) -> bytes:
        """The request's HTTP version, read from the request line when this read starts with it.

        httptools' ``get_http_version()`` formats a ``str`` (≈ 0.45 µs, more than the rest of the request
        line's handling). llhttp has already validated the line, so when the fed bytes begin with this
        request (``METHOD SP URL SP HTTP/x.y``: the usual one request per read) the version is a slice.
        """
        data, self._fresh = self._fresh, b""
        at = len(method) + len(self._url) + 2
        if data[at - 1 : at + 5] == b" HTTP/" and data.startswith(method):
            return data[at + 5 : at + 8]
        version = self._parser.get_http_version()
        return _VERSIONS.get(version) or version.encode()

    def on_body(self, body: bytes) -> None:
        self._events.append(BodyReceived(body))

    def on_message_complete(self) -> None:
        # The next head starts here; bytes of this body fed in the same call are counted too, which
        # only errs on the strict side by at most one read.
        self._in_head = True
        self._events.append(_ENDED)
        if self._closes:
            self._closed = True
