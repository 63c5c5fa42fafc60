"""What an exchange sees of the visitor: one request's stream, whatever protocol carries it.

An HTTP/1.1 connection is one stream at a time (``edge/http1.py``); an HTTP/2 connection multiplexes many
(``edge/http2.py``). The exchange (``edge/exchange.py``) is written against :class:`VisitorStream` only, so
a request runs the same phases, the same origin exchange and the same response writer on both.

The response writer is three calls, used in this order for every answer (an origin's response, an error
page, a WAF block, a redirect): :meth:`~VisitorStream.send_head`, any number of
:meth:`~VisitorStream.send_data`, :meth:`~VisitorStream.send_end`. The stream owns the framing (HTTP/1.1
``Content-Length``, chunked or read-until-close; HTTP/2 frames) and the connection-level fields.

:class:`VisitorStream` is a mypyc *trait* rather than a ``typing.Protocol``: the wheel compiles this module,
and the exchange's calls on a trait (``send_head``, ``send_data``, ``send_end``, ``closed``, ``finished``
per request) are native calls through the implementing class's vtable, where a Protocol's are looked up by
name and parse their arguments (≈ 300 instructions each; docs/performance.md, issue 11, pooled6). So a
stream must subclass it: :class:`~originlock.edge.http1.Http1Connection` and
:class:`~originlock.edge.http2.Http2Stream` do. Without ``mypy_extensions`` (a build-time package of
mypy's) the decorator is the identity and the class a plain abstract base.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Coroutine
from typing import Any, TypeVar

from originlock.edge.visitor import Visitor
from originlock.proto.events import BodyReceived, MessageEnded, RequestReceived, ResponseReceived

__all__ = ["Visitor", "VisitorStream"]

_T = TypeVar("_T")

try:
    from mypy_extensions import trait
except ImportError:  # pragma: no cover - installed without mypy's helpers: what their trait does at run time

    def trait(cls: _T) -> _T:
        return cls


@trait
class VisitorStream:
    """One request's way back to the visitor, and the way its body arrives."""

    visitor: Visitor

    @property
    @abstractmethod
    def closed(self) -> bool:
        """Nothing more can be sent (the visitor went away, or the stream was reset)."""

    # -- the response writer -------------------------------------------------------------------

    @abstractmethod
    def send_head(self, response: ResponseReceived, request: RequestReceived, ray_id: str, keep_alive: bool) -> bool:
        """Queue the response head for ``response`` (an origin's, or a local one built by
        ``edge/responses.py``). Returns whether the connection can stay open after the body (the stream may
        refuse: an HTTP/1.0 visitor and a body without a length)."""

    @abstractmethod
    def send_data(self, data: bytes) -> None:
        """Queue a piece of the response body."""

    @abstractmethod
    def send_end(self) -> None:
        """The response is complete; what is queued goes out with the event loop's next batch of writes."""

    @abstractmethod
    def flush(self) -> None:
        """Write what is queued now."""

    @abstractmethod
    async def drain(self, timeout: float) -> bool:
        """Flush, then wait until the visitor has taken what was written; False if it did not in time."""

    # -- the request body ----------------------------------------------------------------------

    @abstractmethod
    def send_continue(self) -> None:
        """``100 Continue``: the visitor asked before sending its body (HTTP/1.1 only; a no-op on HTTP/2)."""

    @abstractmethod
    def body_event_nowait(self) -> BodyReceived | MessageEnded | None:
        """The next piece of the request body already received, or None.

        Raises:
            DownstreamError: the body was malformed.
        """

    @abstractmethod
    async def body_event(self, timeout: float) -> BodyReceived | MessageEnded | None:
        """Wait up to ``timeout`` for the next piece of the body; None when the visitor went away or timed out."""

    @abstractmethod
    def discard_body(self) -> bool:
        """Drop what was received of the body of a request answered without it; True when the whole
        request was received (the connection can carry another one)."""

    # -- the exchange's lifetime ----------------------------------------------------------------

    @property
    @abstractmethod
    def cancels_task(self) -> bool:
        """The stream cancels the exchange's task when the visitor goes away (HTTP/2's RST_STREAM; the
        origin connection is then closed, not read to the end). Such a stream's task waits for the response
        itself; on one that does not (HTTP/1.1), the task hands a dialled connection's response to the
        origin connection's callbacks, as the pooled path does."""

    @abstractmethod
    def run(self, work: Coroutine[Any, Any, bool | None]) -> None:
        """Finish the exchange in a task (it waits for the origin, a dial, the visitor): ``work`` returns
        whether the connection stays open, and :meth:`finished` is called with it; or None, when the
        exchange went on from the origin connection's callbacks (only if not :attr:`cancels_task`), which
        call :meth:`finished` themselves."""

    @abstractmethod
    def finished(self, keep_alive: bool) -> None:
        """The exchange is over: HTTP/1.1 serves the next request or closes, HTTP/2 ends the stream."""
