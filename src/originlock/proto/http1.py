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

from dataclasses import dataclass
from typing import Final

import httptools

from originlock.errors import (
    DownstreamError,
    HeadersTooLarge,
    MalformedRequest,
    OriginBadResponse,
    UnsupportedTransferCoding,
    UriTooLong,
)
from originlock.proto.events import (
    BodyReceived,
    Event,
    Headers,
    MessageEnded,
    NameFilter,
    RequestReceived,
    ResponseReceived,
    lower_name,
)
from originlock.proto.field_lines import field_lines
from originlock.proto.serialize import HOP_BY_HOP
from originlock.proto.target import normalize_target, resolve_target

__all__ = ["DEFAULT_LIMITS", "Limits", "RequestParser", "ResponseParser"]

#: Cloudflare answers 414 above 16 KiB of URL (developers.cloudflare.com/workers/platform/limits,
#: "URL size 16 KB"); nginx's default large_client_header_buffers is 8 KiB per line.
MAX_URL_BYTES: Final = 16 * 1024
#: Cloudflare: "request headers ... 32 KB" (431 above it); nginx's 4 x 8 KiB buffers give the same total.
MAX_REQUEST_HEAD_BYTES: Final = 32 * 1024
#: Cloudflare 520: "headers > 128 KB" from the origin (spec §7).
MAX_RESPONSE_HEAD_BYTES: Final = 128 * 1024
#: Per header line overhead counted towards the head size (": " and CRLF).
_LINE_OVERHEAD: Final = 4
_VERSIONS: Final = {"1.1": b"1.1", "1.0": b"1.0"}
#: MessageEnded has no fields: one shared instance instead of an allocation per message.
_ENDED: Final = MessageEnded()


@dataclass(frozen=True)
class Limits:
    """Size limits applied while parsing (validated on creation)."""

    max_url_bytes: int = MAX_URL_BYTES
    max_request_head_bytes: int = MAX_REQUEST_HEAD_BYTES
    max_response_head_bytes: int = MAX_RESPONSE_HEAD_BYTES

    def __post_init__(self) -> None:
        if min(self.max_url_bytes, self.max_request_head_bytes, self.max_response_head_bytes) < 256:
            raise ValueError("HTTP limits below 256 bytes cannot hold a request line")


DEFAULT_LIMITS: Final = Limits()


#: Fields the edge interprets or sets itself, among those with a dash in their name. A visitor's field whose
#: name reads as one of them once its underscores are read as dashes (``Transfer_Encoding``) is refused:
#: CGI-style origins (PHP, WSGI environ) map both spellings to one variable, so the origin could act on a
#: field the edge did not. (Host, Connection, TE... have no dash, hence no other spelling.)
_UNDERSCORE_SENSITIVE: Final = frozenset(
    name
    for name in HOP_BY_HOP
    | {b"content-length", b"x-forwarded-for", b"x-forwarded-proto", b"cf-connecting-ip", b"cf-visitor", b"cf-ray"}
    if b"-" in name
)


def _underscore_spellings(name: bytes) -> set[bytes]:
    """Every spelling of ``name`` with one or more of its dashes written as underscores."""
    spellings = {name}
    for at, byte in enumerate(name):
        if byte == 45:  # "-"
            spellings |= {s[:at] + b"_" + s[at + 1 :] for s in spellings}
    return spellings - {name}


#: The refused spellings, looked up as they are (a set lookup per candidate field, no search in its name).
_UNDERSCORED: Final = frozenset(s for name in _UNDERSCORE_SENSITIVE for s in _underscore_spellings(name))
#: The request and response fields the parsers look at.
_REQUEST_NAMES: Final = NameFilter([b"expect", b"transfer-encoding", b"content-length", *_UNDERSCORE_SENSITIVE])
_FRAMING_NAMES: Final = NameFilter([b"transfer-encoding", b"content-length"])


def _framing(headers: Headers) -> str:
    """``chunked`` / ``length`` / ``none`` / ``close`` (neither field: read until EOF) for a response that
    may have a body, from the header fields llhttp already validated. One pass (there were two)."""
    for name, value in headers:
        if not _FRAMING_NAMES.may_be(name):
            continue
        # The usual spelling compared as it is: lower_name hashes the parser's new bytes object.
        lower = b"content-length" if name == b"Content-Length" else lower_name(name)
        if lower == b"transfer-encoding" and b"chunked" in value.lower():
            return "chunked"
        if lower == b"content-length":
            if value and value[-1] in (32, 9):  # llhttp keeps trailing whitespace; leading is never there
                value = value.strip()
            return "length" if value != b"0" else "none"
    return "close"


class _NoCallbacks:
    """The owner of the released parsers below: defines no llhttp callback, so feeding that parser produces nothing."""


#: What a released parser holds instead of its own llhttp parser (see :meth:`RequestParser.release`): shared
#: instances, so releasing allocates nothing, and the attribute keeps its type (no ``None`` check per
#: feed on the request path).
_RELEASED_REQUESTS: Final = httptools.HttpRequestParser(_NoCallbacks())
_RELEASED_RESPONSES: Final = httptools.HttpResponseParser(_NoCallbacks())


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
        method = parser.get_method()
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


class ResponseParser:
    """Parses the responses of one origin connection, one exchange at a time.

    Call :meth:`start` before each request is sent: a response to ``HEAD`` has no body whatever its
    headers say (RFC 9110 §9.3.2), which llhttp cannot be told through httptools, so a fresh parser is
    made per exchange. Interim 1xx responses (other than 101) are skipped.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._events: list[Event] = []
        self._parser = httptools.HttpResponseParser(self)
        self._released = False
        self._head_request = False
        self._reset_message()
        self.received_any = False
        #: The origin sent more than its response (after it, in the same read): the response itself is
        #: complete and unchanged, but the connection must not carry another exchange (nginx: "upstream
        #: sent more data than specified"). What followed is dropped unread.
        self.extra_data = False
        #: Set by the WebSocket relay, which asked for ``101 Switching Protocols``; any other exchange that
        #: gets one fails (520) rather than leaving llhttp stopped. ``upgrade_tail``: bytes after the 101.
        self.allow_upgrade = False
        self.upgrade_tail = b""

    def _reset_message(self) -> None:
        #: The response's version from its status line when the exchange's first read starts with it.
        self._version = b""
        #: That first read while it is being parsed (see proto/field_lines.py), else b"".
        self._wire = b""
        self._headers: Headers = []
        self._reason = b""
        self._head_bytes = 0
        self._in_head = True
        self._skip = False
        self._done = False
        self._framing = "none"

    def start(self, method: bytes) -> None:
        """Prepare for the response to a request with ``method``."""
        if (self._head_request or not self._done or self._events) and not self._released:
            # llhttp still expects the body announced to a HEAD request, or stopped mid-message: start
            # over. After a complete non-HEAD response llhttp is ready for the next message, and keeping
            # it saves a parser allocation per exchange. (Not after release(): the connection is closed,
            # and feed() refuses.)
            self._parser = httptools.HttpResponseParser(self)
        self._head_request = method == b"HEAD"
        self._reset_message()
        self.received_any = False
        self.extra_data = False
        if self._events:  # left over from an abandoned exchange (feed hands out the list it fills)
            self._events = []

    def release(self) -> None:
        """Drop the llhttp parser (the connection closed); see :meth:`RequestParser.release`. A response
        fed after this is refused (520): there is no parser any more to read it."""
        self._parser = _RELEASED_RESPONSES
        self._released = True

    @property
    def done(self) -> bool:
        """The final response is complete (the connection may carry another exchange)."""
        return self._done

    def feed(self, data: bytes) -> list[Event]:
        """Parse bytes from the origin. Raises :class:`OriginBadResponse` (520) when unparsable."""
        if not self.received_any and data:
            self.received_any = True
            if data.startswith(b"HTTP/"):  # the status line (llhttp checks the rest)
                self._version = data[5:8]
                self._wire = data
        if self._done:
            raise OriginBadResponse("the origin sent data after its response")
        if self._released:
            raise OriginBadResponse("the origin connection is closed")
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # llhttp stops after a 101 with Upgrade: what follows is the new protocol's (the 101 and its end
            # are among the events already).
            if not self.allow_upgrade:
                raise OriginBadResponse("the origin switched protocols (101) unasked") from None
            self.upgrade_tail = data[int(exc.args[0]) :]
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, OriginBadResponse):
                raise exc.__context__ from None
            raise OriginBadResponse(f"unparsable origin response: {exc.__context__ or exc}") from exc
        except httptools.HttpParserError as exc:
            if not self._done:
                raise OriginBadResponse(f"unparsable origin response: {exc}") from exc
            self.extra_data = True
        self._wire = b""
        if self._in_head and self._head_bytes > self._limits.max_response_head_bytes:
            raise OriginBadResponse("origin response headers are larger than 128 KiB")
        events, self._events = self._events, []
        return events

    def feed_eof(self) -> list[Event]:
        """The origin closed the connection: ends a read-until-close body, else raises 520."""
        if self._done:
            return []
        if not self._in_head and self._framing == "close":
            self._done = True
            return [_ENDED]
        raise OriginBadResponse("the origin closed the connection before completing its response")

    # -- llhttp callbacks ----------------------------------------------------------------------

    # After the response is done, llhttp goes on with whatever follows it in the same read as if it were the
    # next message: every callback then only notes the extra data (the fields list already belongs to the
    # event handed out).

    def on_status(self, reason: bytes) -> None:
        if self._done:
            self.extra_data = True
            return
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._done:
            self.extra_data = True
            return
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._done:
            self.extra_data = True
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._skip = True  # interim response: wait for the final one
            self._wire = b""  # the final head does not start the read
            return
        self._in_head = False
        headers = self._headers
        if self._head_bytes > self._limits.max_response_head_bytes:
            # The head may have arrived complete in this one read, which the check in feed() cannot see:
            # measure the head itself (only when this many bytes came in).
            self._check_head_size(headers)
        no_body = self._head_request or status in (204, 304) or status < 200
        framing = "none" if no_body else _framing(headers)
        self._framing = framing
        parser = self._parser
        keep_alive = bool(parser.should_keep_alive()) and framing != "close"
        version = self._version  # see RequestParser._version
        if not version:
            text = parser.get_http_version()
            version = _VERSIONS.get(text) or text.encode()
        response = ResponseReceived(status, self._reason, version, headers, keep_alive, framing)
        wire = self._wire
        if wire:
            raw = field_lines(wire, len(self._reason), headers)
            if raw:
                response.raw_fields = raw
                response.raw_of = headers
        self._events.append(response)
        if framing == "none" and self._head_request:
            self._done = True
            self._events.append(_ENDED)

    def _check_head_size(self, headers: Headers) -> None:
        size = len(b"HTTP/1.1 200 \r\n\r\n") + len(self._reason) + _LINE_OVERHEAD * len(headers)
        for name, value in headers:
            size += len(name) + len(value)
        if size > self._limits.max_response_head_bytes:
            raise OriginBadResponse("origin response headers are larger than 128 KiB")

    def on_body(self, body: bytes) -> None:
        if self._done:
            self.extra_data = True  # e.g. a body sent with the answer to HEAD
            return
        self._events.append(BodyReceived(body))

    def on_message_complete(self) -> None:
        if self._skip:
            self._reset_message()
            return
        if self._done:
            self.extra_data = True
            return
        self._done = True
        self._events.append(_ENDED)
