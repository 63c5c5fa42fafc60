"""HTTP/1.1 responses from an origin over llhttp (``httptools``), strict, with the edge's size limits.

See ``proto/http1.py`` for the strict mode and what it refuses; a response the parser cannot read is an
:class:`~originlock.errors.OriginBadResponse` (520).

Where the fields come from: with ``proto/_h1shim.c`` built (wheels), llhttp gets no ``on_status`` /
``on_header`` callback at all (httptools installs only those its protocol object has): llhttp checks the
head as strictly as before, and when it is complete the shim splits the bytes llhttp checked into the
fields in one call (``split_head``). For that the parser keeps the head's bytes: where the message starts in
the read (the exchange's first read, or just after an interim 1xx), and the earlier reads of a head that
spans reads. Without the shim the fields come through llhttp's callbacks, as they always did; both give the
same events (tests/proto/test_proto_http1_split.py). ``on_message_begin`` notices any response bytes after
the response (the connection then carries no other exchange).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Final, cast

import httptools

from originlock.errors import OriginBadResponse
from originlock.proto.events import BodyReceived, Event, Headers, ResponseReceived
from originlock.proto.field_lines import field_lines, shim_function
from originlock.proto.http1_common import (
    _ENDED,
    _LINE_OVERHEAD,
    _RELEASED_RESPONSES,
    _VERSIONS,
    DEFAULT_LIMITS,
    Limits,
    _framing,
)

__all__ = ["SPLIT_HEAD", "ResponseParser", "SplitHead"]

#: ``split_head(buf, start) -> (fields, reason, raw, end, status, framing, keep_alive) | None``
#: (``proto/field_lines.py`` documents it).
SplitHead = Callable[[bytes, int], "tuple[Headers, bytes, bytes, int, int, str, bool | None] | None"]


#: The compiled shim's ``split_head`` when it is built, else None (the fields come through llhttp's
#: callbacks: the Python ``split_head`` costs more than they do, docs/performance.md "Issue 11, h1head").
SPLIT_HEAD: Final = cast("SplitHead | None", shim_function("split_head"))


class _FieldCollector:
    """The fields of one head through llhttp's callbacks (see :func:`_read_head_again`)."""

    def __init__(self) -> None:
        self.reason = b""
        self.headers: Headers = []

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))


def _read_head_again(buf: bytes, start: int) -> tuple[Headers, bytes, int]:
    """A head ``split_head`` did not expect, read through llhttp's callbacks: ``(fields, reason, end)``.

    The head at ``buf[start:]`` has already been accepted by llhttp (strict: no CR inside a line, so the
    first empty line ends it). Not seen from any head llhttp accepts (the tests feed it one that the split
    refuses on purpose); it keeps an unexpected spelling a matter of time, not of correctness.
    """
    at = start
    while buf[at] in (13, 10):  # llhttp skips these before a message
        at += 1
    end = buf.find(b"\r\n\r\n", at) + 4
    collector = _FieldCollector()
    with suppress(httptools.HttpParserUpgrade):  # a 101 with Upgrade: llhttp stops after its head
        httptools.HttpResponseParser(collector).feed_data(buf[at:end])
    return collector.headers, collector.reason, end


class ResponseParser:
    """Parses the responses of one origin connection, one exchange at a time.

    Call :meth:`start` before each request is sent: a response to ``HEAD`` has no body whatever its
    headers say (RFC 9110 §9.3.2), which llhttp cannot be told through httptools, so a fresh parser is
    made per exchange. Interim 1xx responses (other than 101) are skipped.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, split: SplitHead | None = SPLIT_HEAD) -> None:
        self._limits = limits
        #: How the fields are read: ``split`` on the bytes llhttp checked, or (None) llhttp's callbacks.
        self._split = split
        #: llhttp's per-field callbacks, only when there is no ``split``: httptools looks them up when it
        #: makes its parser, and leaves a None one out of llhttp's settings.
        self.on_status: Callable[[bytes], None] | None = None if split is not None else self._on_status
        self.on_header: Callable[[bytes, bytes], None] | None = None if split is not None else self._on_header
        self._events: list[Event] = []
        #: The read being parsed, while it is (for ``split``).
        self._data = b""
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
        #: With ``split``: where this message's head starts in the read being parsed (``_data``), and the
        #: earlier reads of a head that spans reads (from its start; None: it started in this read).
        self._at = 0
        self._parts: list[bytes] | None = None
        self._next_at = 0
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
        self.on_status = self.on_header = None  # bound methods of this parser: a reference cycle
        self._parts = None
        self._data = b""

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
        self._data = data
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
        self._data = b""
        if self._in_head:
            if self._head_bytes > self._limits.max_response_head_bytes:
                raise OriginBadResponse("origin response headers are larger than 128 KiB")
            if self._split is not None:
                self._keep_head(data)
        events, self._events = self._events, []
        return events

    def _keep_head(self, data: bytes) -> None:
        """The head is not complete after ``data``: keep its part of the read for :meth:`_head`."""
        at = self._at
        self._at = 0
        piece = data[at:] if at else data
        if self._parts is None:
            self._parts = [piece]
        else:
            self._parts.append(piece)

    def _head(self, split: SplitHead) -> tuple[Headers, bytes, bytes, int, int, str, bool | None]:
        """The head llhttp has just accepted, split: ``(fields, reason, raw, end, status, framing,
        keep_alive)`` as ``split_head`` gives them, ``end`` being where the head ends in the read being
        parsed."""
        data = self._data
        parts = self._parts
        if parts is None:
            buf = data
            start = self._at
        else:
            parts.append(data)
            buf = b"".join(parts)
            start = 0
            self._parts = None
        found = split(buf, start)
        if found is None:
            headers, reason, end = _read_head_again(buf, start)
            found = headers, reason, b"", end, self._parser.get_status_code(), _framing(headers), None
        headers, reason, raw, end, status, framing, keep = found
        return headers, reason, raw, end - (len(buf) - len(data)), status, framing, keep

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
    # next message: on_message_begin notes the extra data (at its first byte other than CR or LF, where llhttp
    # starts a message), and every other callback only notes it too (the fields list already belongs to the
    # event handed out).

    def on_message_begin(self) -> None:
        if self._done:
            self.extra_data = True

    def _on_status(self, reason: bytes) -> None:
        if self._in_head:
            self._reason += reason

    def _on_header(self, name: bytes, value: bytes) -> None:
        # Only the head's fields: trailers after a chunked body arrive here too, and are dropped (as nginx
        # drops them); appended, they joined the fields of the response already handed out.
        if self._in_head:
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._done:
            self.extra_data = True
            return
        split = self._split
        keep: bool | None = None  # should_keep_alive()'s answer, when the split knows it
        framing = ""  # _framing()'s, likewise
        if split is None:
            status = self._parser.get_status_code()
            if 100 <= status < 200 and status != 101:
                self._skip = True  # interim response: wait for the final one
                self._wire = b""  # the final head does not start the read
                return
            headers = self._headers
            reason = self._reason
            raw = b""
            if self._wire:
                raw = field_lines(self._wire, len(reason), headers)
        else:
            headers, reason, raw, end, status, framing, keep = self._head(split)
            if 100 <= status < 200 and status != 101:
                self._skip = True
                self._wire = b""
                self._next_at = end  # the final response's head starts there
                return
            if not self._wire:  # the field lines are copied only from the exchange's first read
                raw = b""
        self._in_head = False
        if self._head_bytes > self._limits.max_response_head_bytes:
            # The head may have arrived complete in this one read, which the check in feed() cannot see:
            # measure the head itself (only when this many bytes came in).
            self._check_head_size(headers, reason)
        if self._head_request or status in (204, 304) or status < 200:  # no body
            framing = "none"
        elif not framing:
            framing = _framing(headers)
        self._framing = framing
        parser = self._parser
        if keep is None:
            keep = bool(parser.should_keep_alive())
        keep_alive = keep and framing != "close"
        version = self._version  # see RequestParser._version
        if not version:
            text = parser.get_http_version()
            version = _VERSIONS.get(text) or text.encode()
        response = ResponseReceived(status, reason, version, headers, keep_alive, framing)
        if raw:
            response.raw_fields = raw
            response.raw_of = headers
        self._events.append(response)
        if framing == "none" and self._head_request:
            self._done = True
            self._events.append(_ENDED)

    def _check_head_size(self, headers: Headers, reason: bytes) -> None:
        size = len(b"HTTP/1.1 200 \r\n\r\n") + len(reason) + _LINE_OVERHEAD * len(headers)
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
            at = self._next_at
            self._reset_message()
            self._at = at
            return
        if self._done:
            self.extra_data = True
            return
        self._done = True
        self._events.append(_ENDED)
