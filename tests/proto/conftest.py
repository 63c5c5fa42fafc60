"""The HTTP/2 protocol tests run against every codec path: libnghttp2 (``proto/http2_ng.py``, what the edge
uses where the library loads) through the compiled shim (``nghttp2``) and through cffi (``nghttp2-cffi``),
and ``h2`` (``proto/http2.py``, the fallback). Each test of the HTTP/2 modules runs once per path; the name
``H2Server`` in the test module is the codec's class. A test that pins one codec's internals is marked
``@pytest.mark.codec("h2")`` (``nghttp2`` covers both of its sessions).

The shim exists only where it was built (a wheel, or ``python buildtools/build_shim.py`` in a checkout):
elsewhere its runs are skipped, except in a compiled-wheel run (``ORIGINLOCK_EXPECT_COMPILED=1``), where a
missing shim fails."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httptools
import pytest

from originlock.proto import http2_ng, nghttp2_cffi
from originlock.proto.http2 import H2Server, NgH2Server
from originlock.proto.nghttp2_lib import load_shim, shim_unavailable_reason, unavailable_reason

_MODULES = ("test_http2", "test_http2_frames", "test_http2_peers")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "codec(name): the test pins one HTTP/2 codec's behaviour (h2 or nghttp2)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rsplit(".", 1)[-1] in _MODULES:
        metafunc.fixturenames.append("h2_codec")
        metafunc.parametrize("h2_codec", ["nghttp2", "nghttp2-cffi", "h2"])


@pytest.fixture(autouse=True)
def _h2_codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    callspec = getattr(request.node, "callspec", None)
    codec: str | None = callspec.params.get("h2_codec") if callspec is not None else None
    if codec is None:
        yield None
        return
    marker = request.node.get_closest_marker("codec")
    if marker is not None and marker.args[0] != codec.split("-")[0]:
        pytest.skip(f"pins the {marker.args[0]} codec")
    if codec.startswith("nghttp2") and nghttp2_cffi.binding_version() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"libnghttp2 is required under CI: {unavailable_reason()}")
        pytest.skip(f"libnghttp2 cannot be loaded: {unavailable_reason()}")
    if codec == "nghttp2" and load_shim() is None:
        if os.environ.get("ORIGINLOCK_EXPECT_COMPILED") == "1":
            pytest.fail(f"the compiled wheel has no HTTP/2 shim: {shim_unavailable_reason()}")
        pytest.skip(f"the HTTP/2 shim is not built here: {shim_unavailable_reason()}")
    http2_ng.set_session_kind({"nghttp2": http2_ng.SHIM, "nghttp2-cffi": http2_ng.CFFI}.get(codec))
    monkeypatch.setattr(request.module, "H2Server", H2Server if codec == "h2" else NgH2Server)
    try:
        yield codec
    finally:
        http2_ng.set_session_kind(None)


def llhttp_accepts(head: bytes, parser_class: type[httptools.HttpRequestParser | httptools.HttpResponseParser]) -> bool:
    """llhttp (strict) accepts ``head`` as a complete head of ``parser_class``'s kind: the C splits only ever
    see such heads, so the differential tests draw them."""
    complete = []
    parser = parser_class(type("P", (), {"on_headers_complete": lambda self: complete.append(1)})())
    try:
        parser.feed_data(head)
    except httptools.HttpParserError:
        return False
    return bool(complete)
