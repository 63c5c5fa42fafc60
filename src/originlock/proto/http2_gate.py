"""The HTTP/2 frame gate: counts a visitor's frames by their 9-byte headers before ``h2`` parses them.

``h2`` parses whatever it is given and only then decides; a few attacks cost the server before that point,
so :class:`FrameGate` reads each frame header (length, type, flags, stream id; never the payload) as the
bytes arrive and stops the connection at the first frame that crosses a limit. The bytes before that frame
are handed to ``h2``, the rest are never parsed. What it bounds (the limits are :class:`H2Limits` fields,
see :mod:`originlock.proto.http2` for the values and why):

- frame length above our SETTINGS_MAX_FRAME_SIZE: ``h2`` would first buffer the whole announced frame
  (up to 16 MiB) before refusing it; here it is refused on its header (FRAME_SIZE_ERROR);
- a header block (HEADERS + CONTINUATION until END_HEADERS) larger than ``max_header_block_bytes`` or
  made of more than ``max_continuation_frames`` CONTINUATION frames (CVE-2024-27316): ``h2`` would keep
  up to 64 frames of 16 KiB each in memory before decoding anything;
- control frames that cost work and do nothing useful (SETTINGS, PING, PRIORITY, WINDOW_UPDATE, empty
  DATA without END_STREAM, frame types we do not know): a budget of ``control_frame_budget`` that useful
  work earns back (:meth:`refund_control`), as in CVE-2019-9512/9515/9518 (ping, settings, empty frames
  floods);
- RST_STREAM from the visitor (rapid reset, CVE-2023-44487): each costs one from ``reset_budget``; the
  server charges refused and malformed streams too (:meth:`charge_reset`) and refunds a completed response.

It also reports where each header block that opens a new stream ends (``Scan.opened``), so that the
server can hand ``h2`` one opened stream at a time when the concurrency limit is near (see ``H2Server``).
Pure: no ``h2`` here, no I/O.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ENHANCE_YOUR_CALM", "FRAME_SIZE_ERROR", "FrameGate", "GateLimits", "Scan"]

FRAME_SIZE_ERROR: Final = 0x6
ENHANCE_YOUR_CALM: Final = 0xB

_PREFACE_SIZE: Final = 24  # b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PING, _WINDOW_UPDATE, _CONTINUATION = 0, 1, 2, 3, 4, 6, 8, 9
_END_STREAM: Final = 0x1
_END_HEADERS: Final = 0x4
#: Frame types that are pure overhead for a server (GOAWAY ends the connection, PUSH_PROMISE is an error
#: ``h2`` reports): everything but DATA, HEADERS, CONTINUATION, RST_STREAM (its own budget), GOAWAY, PUSH_PROMISE.
_CONTROL: Final = frozenset({_PRIORITY, _SETTINGS, _PING, _WINDOW_UPDATE})
_KNOWN: Final = frozenset(range(10))


class GateLimits:
    """The gate's share of :class:`~originlock.proto.http2.H2Limits` (plain values, copied once)."""

    __slots__ = (
        "control_frame_budget",
        "max_continuation_frames",
        "max_frame_size",
        "max_header_block_bytes",
        "reset_budget",
    )

    def __init__(
        self,
        max_frame_size: int,
        max_header_block_bytes: int,
        max_continuation_frames: int,
        control_frame_budget: int,
        reset_budget: int,
    ) -> None:
        self.max_frame_size = max_frame_size
        self.max_header_block_bytes = max_header_block_bytes
        self.max_continuation_frames = max_continuation_frames
        self.control_frame_budget = control_frame_budget
        self.reset_budget = reset_budget


class Scan:
    """What :meth:`FrameGate.scan` found in one read."""

    __slots__ = ("accepted", "error", "opened")

    def __init__(self, accepted: int, opened: list[int], error: tuple[int, str] | None) -> None:
        #: How many leading bytes of the read may be handed to ``h2`` (all of them unless ``error``).
        self.accepted = accepted
        #: Offsets in the read just after each complete header block that opens a new stream.
        self.opened = opened
        #: ``(HTTP/2 error code, reason)`` of the connection error at ``accepted``, or None.
        self.error = error


class FrameGate:
    """Counts one visitor connection's frames (see the module docstring); one instance per connection."""

    __slots__ = (
        "_block_bytes",
        "_block_frames",
        "_block_opens",
        "_block_stream",
        "_control_tokens",
        "_head",
        "_highest_stream",
        "_limits",
        "_open_pending",
        "_preface_left",
        "_reset_tokens",
        "_skip",
    )

    def __init__(self, limits: GateLimits) -> None:
        self._limits = limits
        self._preface_left = _PREFACE_SIZE
        self._head = bytearray()  # a frame header split across reads
        self._skip = 0  # payload bytes of the current frame still to come
        self._block_stream = 0  # stream of the header block in progress, 0 when none
        self._block_bytes = 0
        self._block_frames = 0
        self._block_opens = False
        self._open_pending = False  # the payload ending an opening header block is still arriving
        self._highest_stream = 0
        self._control_tokens = limits.control_frame_budget
        self._reset_tokens = limits.reset_budget

    @property
    def resets_left(self) -> int:
        """What is left of the reset budget (negative once exceeded)."""
        return self._reset_tokens

    def charge_reset(self) -> bool:
        """Charge one reset (a stream refused or found malformed); False once the budget is exceeded."""
        self._reset_tokens -= 1
        return self._reset_tokens >= 0

    def refund_reset(self) -> None:
        """A response completed: one reset is allowed again (never above the budget)."""
        if self._reset_tokens < self._limits.reset_budget:
            self._reset_tokens += 1

    def refund_control(self) -> None:
        """Useful work was done (a request opened, a DATA frame sent): one control frame is allowed again."""
        if self._control_tokens < self._limits.control_frame_budget:
            self._control_tokens += 1

    def scan(self, data: bytes) -> Scan:
        """Count the frames whose headers ``data`` completes."""
        at = 0
        end = len(data)
        opened: list[int] = []
        if self._preface_left:
            taken = min(self._preface_left, end)
            self._preface_left -= taken
            at = taken
        if self._skip:
            taken = min(self._skip, end - at)
            self._skip -= taken
            at += taken
            if self._open_pending and not self._skip:
                self._open_pending = False
                opened.append(at)
        while at < end:
            start = at - len(self._head)
            if self._head or end - at < 9:
                need = 9 - len(self._head)
                self._head += data[at : at + need]
                at = min(end, at + need)
                if len(self._head) < 9:
                    break
                head, h = bytes(self._head), 0
                self._head.clear()
            else:
                head, h = data, at  # read in place: no slice per frame
                at += 9
            length = (head[h] << 16) | (head[h + 1] << 8) | head[h + 2]
            stream = ((head[h + 5] & 0x7F) << 24) | (head[h + 6] << 16) | (head[h + 7] << 8) | head[h + 8]
            error = self._frame(length, head[h + 3], head[h + 4], stream)
            if error is not None:
                return Scan(max(start, 0), opened, error)
            taken = min(length, end - at)
            at += taken
            self._skip = length - taken
            if self._open_pending and not self._skip:
                self._open_pending = False
                opened.append(at)
        return Scan(end, opened, None)

    def _frame(self, length: int, kind: int, flags: int, stream: int) -> tuple[int, str] | None:
        limits = self._limits
        if length > limits.max_frame_size:
            return FRAME_SIZE_ERROR, f"a frame of {length} bytes, above the {limits.max_frame_size} advertised"
        if self._block_stream:
            if kind != _CONTINUATION:
                return None  # h2 reports the protocol error (a header block must continue)
            self._block_frames += 1
            self._block_bytes += length
            if self._block_frames > limits.max_continuation_frames:
                return (
                    ENHANCE_YOUR_CALM,
                    f"a header block spread over more than {limits.max_continuation_frames} CONTINUATION frames",
                )
            if self._block_bytes > limits.max_header_block_bytes:
                return ENHANCE_YOUR_CALM, f"a header block larger than {limits.max_header_block_bytes} bytes"
            if flags & _END_HEADERS:
                self._block_stream = 0
                self._open_pending = self._block_opens
            return None
        if kind == _HEADERS:
            opens = stream > self._highest_stream and stream & 1 == 1
            if opens:
                self._highest_stream = stream
            if length > limits.max_header_block_bytes:
                return ENHANCE_YOUR_CALM, f"a header block larger than {limits.max_header_block_bytes} bytes"
            if flags & _END_HEADERS:
                self._open_pending = opens
            else:
                self._block_stream = stream or -1  # h2 refuses stream 0; the block is still counted
                self._block_bytes = length
                self._block_frames = 0
                self._block_opens = opens
            return None
        if kind == _RST_STREAM:
            self._reset_tokens -= 1
            if self._reset_tokens < 0:
                return ENHANCE_YOUR_CALM, "too many streams reset (rapid reset)"
            return None
        if kind in _CONTROL or kind not in _KNOWN or (kind == _DATA and length == 0 and not flags & _END_STREAM):
            self._control_tokens -= 1
            if self._control_tokens < 0:
                return (
                    ENHANCE_YOUR_CALM,
                    "too many control frames (SETTINGS, PING, PRIORITY, WINDOW_UPDATE or empty DATA)",
                )
        return None
