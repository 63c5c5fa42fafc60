"""The parsers at an Upgrade: which request llhttp stopped at, the bytes after it, and a 101 from the origin."""

from __future__ import annotations

import pytest

from originlock.errors import OriginBadResponse
from originlock.proto.events import MessageEnded, RequestReceived, ResponseReceived
from originlock.proto.http1 import RequestParser, ResponseParser

HANDSHAKE = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def test_request_parser_names_the_upgrade_request_and_keeps_what_followed() -> None:
    parser = RequestParser()
    events = parser.feed(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n" + HANDSHAKE + b"\x81\x85frame")
    first, _, upgrade, end = events
    assert isinstance(first, RequestReceived) and first.keep_alive  # the earlier pipelined request is unchanged
    assert isinstance(upgrade, RequestReceived) and isinstance(end, MessageEnded)
    assert parser.upgrade_request is upgrade and not upgrade.keep_alive
    assert parser.upgrade_tail == b"\x81\x85frame"


def test_request_parser_without_upgrade_names_none() -> None:
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")  # no Connection: upgrade
    assert parser.upgrade_request is None and parser.upgrade_tail == b""


def test_response_parser_relay_gets_the_101_and_the_bytes_after_it() -> None:
    parser = ResponseParser()
    parser.start(b"GET")
    parser.allow_upgrade = True
    response, end = parser.feed(SWITCHING + b"\x81\x02hi")
    assert isinstance(response, ResponseReceived) and response.status == 101 and isinstance(end, MessageEnded)
    assert parser.done and parser.upgrade_tail == b"\x81\x02hi"


def test_unasked_101_is_a_bad_response() -> None:
    parser = ResponseParser()
    parser.start(b"GET")
    with pytest.raises(OriginBadResponse, match="101"):
        parser.feed(SWITCHING)
