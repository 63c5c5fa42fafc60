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

Where the request's fields come from: with ``proto/_h1shim.c`` built (wheels), llhttp gets no ``on_header``
callback (httptools installs only the callbacks its protocol object has; the head is checked as strictly),
and the head llhttp accepted is split in one call (``split_request_head``), as the response parser does
(``proto/http1_response.py``). That needs where the head starts in the read: known while every message so
far had no body or a Content-Length one (the head's end plus the body bytes llhttp handed over). A
chunked body's framing is not handed over, so at a Transfer-Encoding field (or a head the split does not
expect) the connection changes to llhttp's callbacks for good: a new llhttp parser with them is fed again
from that head's start, which it reads as the first parser would have. The split also gives the URL (llhttp
gets no ``on_url`` either) and, for the usual Connection fields, what ``should_keep_alive()`` would say.
The callbacks raise 414 as the URL arrives, whatever follows; without ``on_url`` a URL over the limit is
seen only in a complete head, so a head that is still incomplete, or refused by llhttp, after more bytes
than the URL limit is read again through the callbacks (the same change), which raise what they would
have. Both ways give the same events and errors (tests/proto/test_proto_http1_requests.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

import httptools

from originlock.errors import DownstreamError, HeadersTooLarge, MalformedRequest, UnsupportedTransferCoding, UriTooLong
from originlock.proto.events import BodyReceived, Event, Headers, RequestReceived, lower_name
from originlock.proto.field_lines import shim_function
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
__all__ = ["DEFAULT_LIMITS", "SPLIT_REQUEST_HEAD", "Limits", "RequestParser", "ResponseParser", "SplitRequestHead"]

#: ``split_request_head(buf, start) -> (method, url, version, fields, size, end, notable, keep_alive) | None``
#: (``proto/field_lines.py`` documents it).
SplitRequestHead = Callable[[bytes, int], "tuple[bytes, bytes, bytes, Headers, int, int, bool, bool | None] | None"]


#: The compiled shim's ``split_request_head`` when it is built, else None (the fields come through llhttp's
#: callbacks, which cost less than the Python split does).
SPLIT_REQUEST_HEAD: Final = cast("SplitRequestHead | None", shim_function("split_request_head"))


class _UseCallbacks(Exception):
    """Raised in ``on_headers_complete`` to stop llhttp at a head the split cannot take (see the module's
    docstring): :meth:`RequestParser.feed` then reads that head again through the callbacks."""


class RequestParser:
    """Parses requests sent by a visitor; one instance per downstream connection."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, split: SplitRequestHead | None = SPLIT_REQUEST_HEAD) -> None:
        self._limits = limits
        #: How the fields are read: ``split`` on the bytes llhttp checked, or (None) llhttp's callbacks.
        self._split = split
        #: llhttp's URL and per-field callbacks, only without ``split`` (httptools looks them up when it makes
        #: its parser, and leaves a None one out of llhttp's settings).
        self.on_url: Callable[[bytes], None] | None = None if split is not None else self._on_url
        self.on_header: Callable[[bytes, bytes], None] | None = None if split is not None else self._on_header
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[Event] = []
        self._url = b""
        self._headers: Headers = []
        self._head_bytes = 0
        self._in_head = True
        self._upgrade = False
        #: With ``split``: the read being parsed, where the next message starts in it (known: every message
        #: before it had no body or a Content-Length one), and the earlier reads of a head that spans reads.
        self._data = b""
        self._at = 0
        self._parts: list[bytes] | None = None
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
            if self._split is None:  # only the callbacks read the method and version from it
                self._fresh = data if self._head_bytes == 0 else b""
            self._head_bytes += len(data)
        self._data = data
        self._at = 0
        fed = data
        while True:
            try:
                self._parser.feed_data(fed)
            except httptools.HttpParserUpgrade as exc:
                # llhttp stops at an Upgrade request: nothing after it is HTTP/1.1 any more. The edge answers
                # it (or relays a WebSocket) and then closes (the caller sees keep_alive=False). Set here rather
                # than by asking llhttp (should_upgrade()) for every request.
                self._upgrade = True
                self.upgrade_tail = fed[int(exc.args[0]) :]
                for event in reversed(self._events):  # the last head is the upgrade; earlier pipelined ones stay
                    if isinstance(event, RequestReceived):
                        event.keep_alive = False
                        self.upgrade_request = event
                        break
            except httptools.HttpParserCallbackError as exc:
                cause = exc.__context__
                if isinstance(cause, _UseCallbacks):
                    fed = self._use_callbacks()
                    continue
                if isinstance(cause, DownstreamError):
                    raise cause from None
                raise MalformedRequest(f"malformed request: {exc}") from exc
            except httptools.HttpParserError as exc:
                if self._closed:  # bytes after a request that closes the connection: not an error
                    events, self._events = self._events, []
                    return events
                if not self._url_unseen():
                    raise MalformedRequest(f"malformed request: {exc}") from exc
            if not self._url_unseen():
                break
            fed = self._use_callbacks()
        self._data = b""
        if self._in_head:
            if self._head_bytes > self._limits.max_request_head_bytes:
                # Still inside a head after this many bytes: the URL check has already fired in on_url.
                raise HeadersTooLarge()
            if self._split is not None and self._at < len(data):
                self._keep_head(data)
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
        self.on_url = self.on_header = None  # bound methods of this parser: a reference cycle
        self._parts = None

    # -- the head's bytes, for the split --------------------------------------------------------

    def _url_unseen(self) -> bool:
        """With ``split``: the head being read is incomplete (or refused) after more bytes than the URL limit,
        so its URL may be over it, which only ``on_url`` would have seen (it raises 414 as the URL arrives,
        before anything later in the head is read): the caller reads that head again through the callbacks."""
        if self._split is None or not self._in_head or self._upgrade or self._closed:
            return False
        pending = len(self._data) - self._at
        if self._parts is not None:
            pending += sum(len(part) for part in self._parts)
        return pending > self._limits.max_url_bytes

    def _keep_head(self, data: bytes) -> None:
        """The next head is not complete after ``data``: keep its part of the read."""
        piece = data[self._at :] if self._at else data
        if self._parts is None:
            self._parts = [piece]
        else:
            self._parts.append(piece)

    def _use_callbacks(self) -> bytes:
        """Change to llhttp's callbacks for the rest of the connection, from the head the split could not
        take: returns the bytes to feed the new llhttp parser (that head's start to the read's end)."""
        parts = self._parts
        rest = self._data[self._at :] if parts is None else b"".join([*parts, self._data])
        self._split = None
        self._parts = None
        self.on_url = self._on_url
        self.on_header = self._on_header
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers = []
        self._fresh = b""
        return rest

    # -- llhttp callbacks ----------------------------------------------------------------------

    # No on_message_begin: the URL and header list are reset when a head completes, which saves one
    # Python callback per request (llhttp only calls the callbacks the object defines).

    def _on_url(self, url: bytes) -> None:
        self._url += url  # one call per head in practice; b"" + url is url itself
        if len(self._url) > self._limits.max_url_bytes:
            raise UriTooLong()

    def _on_header(self, name: bytes, value: bytes) -> None:
        # Fields after a chunked body (trailers) arrive here too: they are dropped, as nginx does. Kept, they
        # would land in the next pipelined request's fields (the list is that request's by then).
        if self._in_head:
            self._headers.append((name, value))

    def _check_fields(self, headers: Headers) -> tuple[int, str, bool, bool, bytes]:
        """One pass over the fields for the size limit, Expect, the body framing and the refused spellings
        (was three passes plus a generator; the request head is parsed for every request). llhttp has
        already refused Content-Length with Transfer-Encoding, and repeated or non-final chunked.

        Returns ``(size of the field lines, framing, expect, bad expect, Content-Length value)``."""
        size = _LINE_OVERHEAD * len(headers)
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
                if self._split is not None:  # a chunked body: its end in the read is not known
                    raise _UseCallbacks()
                if value.strip().lower() != b"chunked":  # llhttp lets "gzip, chunked" through
                    raise UnsupportedTransferCoding(f"transfer coding {value.decode('latin-1')!r} is not supported")
                framing = "chunked"
            elif lower == b"content-length":
                length_value = value
                framing = "length" if value.strip() != b"0" else "none"
            elif lower in _UNDERSCORED:
                raise MalformedRequest(f"header field name {name.decode('latin-1')!r} reads as one the edge interprets")
        return size, framing, expect, bad_expect, length_value

    def on_headers_complete(self) -> None:
        split = self._split
        keep: bool | None = None
        if split is not None:
            data = self._data
            parts = self._parts
            if parts is None:
                found = split(data, self._at)
                joined = 0
            else:
                buf = b"".join([*parts, data])
                found = split(buf, 0)
                joined = len(buf) - len(data)
            if found is None:
                raise _UseCallbacks()
            method, url, version, headers, size, end, notable, keep = found
            if len(url) > self._limits.max_url_bytes:  # what _on_url raises first
                raise UriTooLong()
            framing = ""
            expect = bad_expect = False
            length_value = b""
            if notable:
                size, framing, expect, bad_expect, length_value = self._check_fields(headers)
            self._parts = None
            self._at = end - joined
        else:
            url = self._url
            headers = self._headers
            size, framing, expect, bad_expect, length_value = self._check_fields(headers)
        self._in_head = False
        self._head_bytes = 0
        if size + len(url) > self._limits.max_request_head_bytes:
            raise HeadersTooLarge()
        if bad_expect:
            raise MalformedRequest("unsupported Expect value")
        if length_value and length_value[-1] in (32, 9):  # a space or a tab after the digits
            headers = self._trim_length(headers, length_value)
        parser = self._parser
        if split is None:
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
        keep_alive = bool(parser.should_keep_alive()) if keep is None else keep
        self._closes = not keep_alive
        self._events.append(RequestReceived(method, target, version, headers, keep_alive, framing or "none", expect))
        if split is None:  # the callbacks' (the split's come from the head)
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
        self._at += len(body)  # a Content-Length body's bytes follow one another in the read
        self._events.append(BodyReceived(body))

    def on_message_complete(self) -> None:
        # The next head starts here; bytes of this body fed in the same call are counted too, which
        # only errs on the strict side by at most one read.
        self._in_head = True
        self._events.append(_ENDED)
        if self._closes:
            self._closed = True
