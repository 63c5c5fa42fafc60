"""What the compiled shim (``proto/_ngshim.c``) does in C instead of Python, held to the Python it stands for.

The bits it sets on a request header block (``FIELDS_CHECKED``, ``PSEUDO_CHECKED``) let
``request_from_fields`` skip its byte checks, so for every byte, in names and values, a bit may be set only
where ``http2_request``'s own regular expressions find nothing to refuse.
"""

from __future__ import annotations

import os

import hpack
import pytest

from originlock.errors import MalformedRequest
from originlock.proto import http2_request
from originlock.proto.http1 import Limits
from originlock.proto.http2_request import FIELDS_CHECKED, PSEUDO_CHECKED
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
