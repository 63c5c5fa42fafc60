"""Sans-IO HTTP/1.1: bytes in, events out; no asyncio, no sockets, no clock.

Theory of operation. The edge's downstream side feeds every received byte string to a
:class:`~originlock.proto.http1.RequestParser` and gets back a list of past-tense events
(:class:`RequestReceived`, :class:`BodyReceived`, :class:`MessageEnded`). The origin side does the same
with :class:`~originlock.proto.http1.ResponseParser` (:class:`ResponseReceived` ...). Parsing is done by
llhttp (through ``httptools``) in its default strict mode: ambiguous framing (both Content-Length and
Transfer-Encoding, duplicate Content-Length, bad chunk sizes), obs-fold and bare LF are refused. Limits
(RFC 9110 §15.5.15 414, RFC 6585 §5 431) are enforced here, so the caller only sees events or an
:class:`~originlock.errors.EdgeError`. Serialising messages back to bytes lives in
:mod:`originlock.proto.serialize`; nothing here writes to a socket.
"""

from originlock.proto.events import (
    BodyReceived,
    Event,
    Headers,
    MessageEnded,
    RequestReceived,
    ResponseReceived,
)
from originlock.proto.http1 import Limits, RequestParser, ResponseParser

__all__ = [
    "BodyReceived",
    "Event",
    "Headers",
    "Limits",
    "MessageEnded",
    "RequestParser",
    "RequestReceived",
    "ResponseParser",
    "ResponseReceived",
]
