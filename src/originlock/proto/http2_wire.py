"""HTTP/2 frames the libnghttp2 server writes or reads itself, around its codec: its GOAWAY frames, the
code of a GOAWAY nghttp2 queued, and the SETTINGS entry it adds to nghttp2's SETTINGS frame (why each is
done outside nghttp2: ``proto/http2_ng.py``'s docstring). RFC 9113 §4.1, §6.5, §6.8. Pure.
"""

from __future__ import annotations

from originlock.proto import nghttp2_lib as ng

__all__ = ["goaway_code", "goaway_frame", "with_setting"]


def goaway_code(frames: bytes) -> int | None:
    """The error code of the last GOAWAY among serialised ``frames`` (the rare path: nghttp2 ended)."""
    at, code = 0, None
    while at + 9 <= len(frames):
        length = int.from_bytes(frames[at : at + 3])
        if frames[at + 3] == ng.FRAME_GOAWAY and at + 17 <= len(frames):
            code = int.from_bytes(frames[at + 13 : at + 17])
        at += 9 + length
    return code


def goaway_frame(last_stream: int, code: int) -> bytes:
    """GOAWAY naming ``last_stream``, with ``code`` (serialised here: see ``http2_ng``'s docstring)."""
    return b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + last_stream.to_bytes(4) + code.to_bytes(4)


def with_setting(frame: bytes, identifier: int, value: int) -> bytes:
    """The serialised SETTINGS ``frame`` with one more entry.

    Raises:
        RuntimeError: ``frame`` is not exactly one SETTINGS frame.
    """
    if len(frame) < 9 or frame[3] != ng.FRAME_SETTINGS or int.from_bytes(frame[:3]) + 9 != len(frame):
        raise RuntimeError("nghttp2 did not queue exactly our SETTINGS frame")
    entry = identifier.to_bytes(2) + value.to_bytes(4)
    return (len(frame) - 9 + 6).to_bytes(3) + frame[3:] + entry
