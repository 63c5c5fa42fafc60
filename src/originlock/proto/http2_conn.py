"""``h2``'s server connection, adjusted where its behaviour does not suit an edge (see the "Dependency
notes" of :mod:`originlock.proto.http2`). Two internals are overridden, hence the ``h2<5`` pin; the tests
in tests/proto pin each behaviour."""

from __future__ import annotations

from typing import Final

from h2 import events as h2e
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import InvalidBodyLengthError, ProtocolError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import DataFrame, Frame, HeadersFrame, SettingsFrame

__all__ = ["ENCODER_TABLE_SIZE", "KNOWN_SETTINGS", "CeilingSettings", "ServerConnection"]

#: The most our HPACK encoder keeps of response fields per connection, whatever the visitor allows (the
#: protocol's default size; nginx does not index response fields at all).
ENCODER_TABLE_SIZE: Final = 4096


KNOWN_SETTINGS: Final = frozenset(int(code) for code in SettingCodes)


class CeilingSettings(Settings):
    """Our SETTINGS, whose MAX_CONCURRENT_STREAMS as ``h2`` enforces it is a ceiling above the one sent."""

    ceiling = 0

    @property
    def max_concurrent_streams(self) -> int:
        return self.ceiling

    @max_concurrent_streams.setter
    def max_concurrent_streams(self, value: int) -> None:
        self[SettingCodes.MAX_CONCURRENT_STREAMS] = value


class ServerConnection(H2Connection):
    """``h2``'s connection, with the errors RFC 9113 §8.1.1 scopes to a stream kept to that stream."""

    def __init__(self, config: H2Configuration) -> None:
        super().__init__(config)
        #: ``(stream_id, reason)`` of the streams reset for a stream error since the server last looked.
        self.stream_errors: list[tuple[int, str]] = []

    def _receive_frame(self, frame: Frame) -> list[h2e.Event]:
        if isinstance(frame, SettingsFrame) and frame.settings:
            # Unknown settings are ignored (RFC 9113 §6.5.2); h2 would keep each one with its own deque:
            # 400 KB of SETTINGS frames holding every 16-bit identifier cost 50 MB per connection.
            frame.settings = {key: value for key, value in frame.settings.items() if key in KNOWN_SETTINGS}
        known = frame.stream_id in self.streams
        try:
            return super()._receive_frame(frame)
        except InvalidBodyLengthError as exc:
            reason = f"the body does not match Content-Length: {exc}"
        except ProtocolError as exc:
            # A plain ProtocolError for a HEADERS frame that created its stream was raised after the block
            # was decoded (HPACK state intact): header validation or Content-Length. Anything else stays
            # a connection error.
            if type(exc) is not ProtocolError or not isinstance(frame, HeadersFrame) or known:
                raise
            if frame.stream_id not in self.streams:
                raise
            reason = f"malformed request: {exc}"
        self.reset_stream(frame.stream_id, ErrorCodes.PROTOCOL_ERROR)
        if isinstance(frame, DataFrame):
            self.acknowledge_received_data(frame.flow_controlled_length, frame.stream_id)
        self.stream_errors.append((frame.stream_id, reason))
        return []
