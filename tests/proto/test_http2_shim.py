"""What the compiled shim (``proto/_ngshim.c``) does in C instead of Python, held to the Python it stands for.

Request side: the bits it sets on a header block (``FIELDS_CHECKED``, ``PSEUDO_CHECKED``) let
``request_from_fields`` skip its byte checks, so for every byte, in names and values, a bit may be set only
where ``http2_request``'s own regular expressions find nothing to refuse. Response side: ``respond`` builds
an origin's fields in HTTP/2 form, which must be exactly what ``response_fields`` makes of them after the
edge's drops (``visitor_response_headers``), or else hand them back (nothing queued) for that general path.
"""

from __future__ import annotations

import os

import h2.config
import h2.connection
import h2.events
import hpack
import pytest

from originlock.edge.http2 import _DROPPED
from originlock.errors import MalformedRequest, UnsafeHeaderValue
from originlock.pipeline.builtin.forwarding import visitor_response_headers
from originlock.proto import http2_ng, http2_request
from originlock.proto.events import ResponseReceived
from originlock.proto.http1 import Limits
from originlock.proto.http2 import NgH2Server, RequestStarted
from originlock.proto.http2_request import FIELDS_CHECKED, PSEUDO_CHECKED, response_fields
from originlock.proto.nghttp2_lib import load_shim, shim_unavailable_reason

Fields = list[tuple[bytes, bytes]]
_EV_REQUEST = 1
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@pytest.fixture
def shim() -> object:
    module = load_shim()
    if module is None:
        if os.environ.get("ORIGINLOCK_EXPECT_COMPILED") == "1":
            pytest.fail(f"the compiled wheel has no HTTP/2 shim: {shim_unavailable_reason()}")
        pytest.skip(f"the HTTP/2 shim is not built here: {shim_unavailable_reason()}")
    return module


def _block_flags(shim: object, fields: Fields) -> int:
    """The shim's flags for one request header block carrying ``fields``."""
    session = shim.Session(65536)  # type: ignore[attr-defined]
    block = hpack.Encoder().encode(fields, huffman=False)
    frame = len(block).to_bytes(3, "big") + b"\x01\x05" + (1).to_bytes(4, "big") + block
    rv, events, _ = session.recv(_PREFACE + frame)
    assert rv == len(_PREFACE + frame)
    (flags,) = [value for kind, _, value, _ in events if kind == _EV_REQUEST]
    assert flags & 0xFF == 0x05  # the frame's own flags are kept below the checks' bits
    return int(flags)


def _reference(fields: Fields) -> int:
    """The bits as the request pass's regular expressions define them."""
    bits = FIELDS_CHECKED | PSEUDO_CHECKED
    for name, value in fields:
        pseudo = name[:1] == b":"
        if pseudo and http2_request._TARGET_BAD.search(value):
            bits &= ~PSEUDO_CHECKED
        surrounded = bool(value) and (value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"))
        bad_name = not name or (not pseudo and http2_request._NAME.fullmatch(name) is None)
        if surrounded or bad_name or http2_request._VALUE_BAD.search(value):
            bits &= ~FIELDS_CHECKED
    return bits


def _head(*extra: tuple[bytes, bytes], path: bytes = b"/", authority: bytes = b"a.test") -> Fields:
    return [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority), (b":path", path), *extra]


def test_a_plain_block_is_certified(shim: object) -> None:
    fields = _head((b"user-agent", b"h2load nghttp2/1.52.0"), (b"accept", b"*/*"), (b"x-tab", b"a\tb"))
    assert _block_flags(shim, fields) & (FIELDS_CHECKED | PSEUDO_CHECKED) == FIELDS_CHECKED | PSEUDO_CHECKED


@pytest.mark.parametrize("where", ["name", "value-start", "value-middle", "value-end", "path", "authority"])
def test_every_byte_is_certified_only_where_the_request_pass_finds_nothing(shim: object, where: str) -> None:
    for byte in range(256):
        b = bytes([byte])
        fields = {
            "name": _head((b"x-" + b + b"n", b"v")),
            "value-start": _head((b"x-v", b + b"v")),
            "value-middle": _head((b"x-v", b"v" + b + b"v")),
            "value-end": _head((b"x-v", b"v" + b)),
            "path": _head(path=b"/p" + b + b"q"),
            "authority": _head(authority=b"a" + b + b".test"),
        }[where]
        assert _block_flags(shim, fields) & (FIELDS_CHECKED | PSEUDO_CHECKED) == _reference(fields), (where, byte)


def test_an_empty_name_or_a_regular_field_that_looks_pseudo_is_left_to_python(shim: object) -> None:
    assert not _block_flags(shim, _head((b"", b"v"))) & FIELDS_CHECKED
    # Certified as far as bytes go: the request pass itself refuses a pseudo-header field after a regular one.
    fields = [(b"accept", b"*/*"), *_head()]
    assert _block_flags(shim, fields) & FIELDS_CHECKED
    with pytest.raises(http2_request.StreamMalformed):
        http2_request.request_from_fields(fields, True, Limits(), FIELDS_CHECKED | PSEUDO_CHECKED)


def test_a_certified_block_gives_the_same_request_as_the_full_checks() -> None:
    fields = _head(
        (b"user-agent", b"x"), (b"host", b"a.test"), (b"cookie", b"a=1"), (b"cookie", b"b=2"), path=b"/a/./b"
    )
    limits = Limits()
    checked = http2_request.request_from_fields(fields, True, limits, FIELDS_CHECKED | PSEUDO_CHECKED)
    assert checked == http2_request.request_from_fields(fields, True, limits)
    assert checked.target == b"/a/b" and (b"cookie", b"a=1; b=2") in checked.headers


def test_the_host_field_is_checked_even_when_the_pseudo_fields_were() -> None:
    fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b"host", b"a b")]
    with pytest.raises(MalformedRequest):
        http2_request.request_from_fields(fields, True, Limits(), FIELDS_CHECKED | PSEUDO_CHECKED)


# -- responses ---------------------------------------------------------------------------------------------


class _Client:
    """An ``h2`` client of an :class:`NgH2Server` on the shim, one GET open on stream 1."""

    def __init__(self) -> None:
        http2_ng.set_session_kind(http2_ng.SHIM)
        try:
            self.server = NgH2Server()
        finally:
            http2_ng.set_session_kind(None)
        self.server.initiate()
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.client.initiate_connection()
        self.client.send_headers(1, _head(), end_stream=True)
        events = self.server.feed(self.client.data_to_send())
        assert any(isinstance(e, RequestStarted) for e in events)
        self.client.receive_data(self.server.data_to_send())

    def head(self) -> Fields:
        self.server.send_data(1, b"", end_stream=True)
        events = self.client.receive_data(self.server.data_to_send())
        (response,) = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        return list(response.headers)


_RAY = "8f0e1d2c3b4a5968-EDG"


def _general(status: int, headers: Fields) -> Fields:
    """The edge's general path: what ``visitor_response_headers`` hands ``send_response``."""
    response = ResponseReceived(status, b"", b"1.1", headers, True, "length")
    return visitor_response_headers(response, ray_id=_RAY, chunked=False, close=False)


_RESPONSES: list[tuple[int, Fields]] = [
    (200, [(b"Server", b"nginx"), (b"Content-Type", b"text/plain"), (b"Content-Length", b"0")]),
    (404, [(b"X-Mixed-CASE", b"v"), (b"set-cookie", b"a=1"), (b"Set-Cookie", b"b=2"), (b"empty", b"")]),
    (200, [(n.title(), b"x") for n in _DROPPED] + [(b"Date", b"Mon, 01 Jan 2026 00:00:00 GMT")]),
    (200, [(b"Server", b"nginx"), (b"Connection", b"keep-alive")]),  # what a pooled origin says
    # named fields that are dropped anyway or absent: nothing more to drop
    (200, [(b"Connection", b"close, X-Absent,\tUpgrade , "), (b"Upgrade", b"h2c"), (b"connection", b"TE")]),
    (599, [(b"x-tab", b"a\tb"), (b"x-high", bytes(range(0x80, 0x100))), (b"CF-Ray", b"origin's own")]),
]


@pytest.mark.parametrize(("status", "headers"), _RESPONSES)
def test_respond_makes_the_fields_response_fields_makes(shim: object, status: int, headers: Fields) -> None:
    raw, general = _Client(), _Client()
    assert raw.server.send_raw_response(1, status, headers, _DROPPED, (b"cf-ray", _RAY.encode()))
    general.server.send_response(1, status, _general(status, headers), end_stream=False)
    assert raw.head() == general.head() == response_fields(status, _general(status, headers))


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, [(b"Connection", b"keep-alive, X-Hop"), (b"x-hop", b"1")]),  # the fields Connection names go too
        (200, [(b"x-hop", b"1"), (b"Connection", b"x-" + b"h" * 70)]),  # a token longer than the shim reads
        (200, [(b"bad name", b"v")]),
        (200, [(b"x-a", b"b\r\nx-injected: 1")]),
        (200, [(b"x-nul", b"\0")]),
        (200, [(b"", b"v")]),
        (100, []),  # interim
        (600, []),
        (99, []),
    ],
)
def test_respond_hands_back_what_needs_the_general_path(shim: object, status: int, headers: Fields) -> None:
    client = _Client()
    assert not client.server.send_raw_response(1, status, headers, _DROPPED, (b"cf-ray", b"r"))
    assert client.server.data_to_send() == b""  # nothing queued
    if status == 200 and b"Connection" not in dict(headers):
        with pytest.raises(UnsafeHeaderValue):
            response_fields(status, headers)


def test_a_ray_id_that_could_inject_a_field_is_handed_back(shim: object) -> None:
    client = _Client()
    assert not client.server.send_raw_response(1, 200, [], _DROPPED, (b"cf-ray", b"r\r\nx: 1"))
