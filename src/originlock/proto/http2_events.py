"""HTTP/2 server limits and the events :class:`~originlock.proto.http2.H2Server` yields (see that module's
docstring for what each means and why the limits are what they are)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from h2.errors import ErrorCodes

from originlock.errors import DownstreamError
from originlock.proto.events import RequestReceived
from originlock.proto.http1 import DEFAULT_LIMITS, Limits

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
    "RequestRefused",
    "RequestStarted",
    "StreamData",
    "StreamEnded",
    "StreamReset",
    "WindowOpened",
]

NO_ERROR: Final = int(ErrorCodes.NO_ERROR)
PROTOCOL_ERROR: Final = int(ErrorCodes.PROTOCOL_ERROR)
REFUSED_STREAM: Final = int(ErrorCodes.REFUSED_STREAM)
CANCEL: Final = int(ErrorCodes.CANCEL)
ENHANCE_YOUR_CALM: Final = int(ErrorCodes.ENHANCE_YOUR_CALM)


@dataclass(frozen=True)
class H2Limits:
    """Per-connection HTTP/2 limits (see the module docstring for the values and their reasons)."""

    max_concurrent_streams: int = 128
    #: SETTINGS_INITIAL_WINDOW_SIZE: request-body bytes a stream may send before the edge consumes them.
    initial_window: int = 65536
    #: The connection's receive window: request-body bytes of all streams held unacknowledged.
    connection_window: int = 1 << 20
    #: SETTINGS_MAX_HEADER_LIST_SIZE, counted as HPACK does (name + value + 32 per field).
    max_header_list_size: int = 64 * 1024
    #: SETTINGS_MAX_FRAME_SIZE.
    max_frame_size: int = 16384
    max_header_block_bytes: int = 64 * 1024
    max_continuation_frames: int = 16
    reset_budget: int = 100
    control_frame_budget: int = 1000
    max_requests: int = 1000
    #: The HTTP/1 parser's URL and head limits, applied to each request (414, 431).
    head_limits: Limits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        if not 1 <= self.max_concurrent_streams <= 2**31 - 1:
            raise ValueError("max_concurrent_streams must be between 1 and 2^31-1")
        if not 65535 <= self.connection_window <= 2**31 - 1 or not 1 <= self.initial_window <= 2**31 - 1:
            raise ValueError("flow-control windows must be between 1 (65535 for the connection) and 2^31-1")
        if not 16384 <= self.max_frame_size <= 2**24 - 1:
            raise ValueError("max_frame_size must be between 16384 and 2^24-1")
        if min(self.max_header_list_size, self.max_header_block_bytes) < 1024:
            raise ValueError("header list and block limits below 1 KiB cannot hold a request")
        if min(self.max_continuation_frames, self.reset_budget, self.control_frame_budget, self.max_requests) < 1:
            raise ValueError("HTTP/2 budgets must be positive")


class RequestStarted:
    """A request's header block arrived on a new stream."""

    __slots__ = ("request", "stream_id")

    def __init__(self, stream_id: int, request: RequestReceived) -> None:
        self.stream_id = stream_id
        self.request = request

    def __repr__(self) -> str:
        return f"RequestStarted({self.stream_id}, {self.request!r})"


class RequestRefused:
    """A request the edge refuses with ``error.status_hint``, as it would over HTTP/1."""

    __slots__ = ("error", "stream_id")

    def __init__(self, stream_id: int, error: DownstreamError) -> None:
        self.stream_id = stream_id
        self.error = error

    def __repr__(self) -> str:
        return f"RequestRefused({self.stream_id}, {self.error.status_hint})"


class StreamData:
    """Request-body bytes; hand them back with :meth:`H2Server.acknowledge` once consumed."""

    __slots__ = ("data", "stream_id")

    def __init__(self, stream_id: int, data: bytes) -> None:
        self.stream_id = stream_id
        self.data = data

    def __repr__(self) -> str:
        return f"StreamData({self.stream_id}, {len(self.data)} bytes)"


class StreamEnded:
    """The request on the stream is complete."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id

    def __repr__(self) -> str:
        return f"StreamEnded({self.stream_id})"


class StreamReset:
    """The stream was reset (by the visitor, or by us on a stream error)."""

    __slots__ = ("error_code", "stream_id")

    def __init__(self, stream_id: int, error_code: int) -> None:
        self.stream_id = stream_id
        self.error_code = error_code

    def __repr__(self) -> str:
        return f"StreamReset({self.stream_id}, {self.error_code})"


class WindowOpened:
    """Response bytes held back on the stream were sent; :meth:`H2Server.buffered` is lower."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id

    def __repr__(self) -> str:
        return f"WindowOpened({self.stream_id})"


class ConnectionEnded:
    """The connection is over (GOAWAY sent or received): write what is queued, then close."""

    __slots__ = ("error_code", "reason")

    def __init__(self, error_code: int, reason: str) -> None:
        self.error_code = error_code
        self.reason = reason

    def __repr__(self) -> str:
        return f"ConnectionEnded({self.error_code}, {self.reason!r})"


DEFAULT_H2_LIMITS: Final = H2Limits()

H2Event = RequestStarted | RequestRefused | StreamData | StreamEnded | StreamReset | WindowOpened | ConnectionEnded
