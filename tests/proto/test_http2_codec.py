"""Which HTTP/2 codec the edge gets: libnghttp2 where it loads, ``h2`` otherwise (and when asked for), and
``originlock serve``'s banner says which. The codec choice is made once per process, hence subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from originlock.proto import http2_ng
from originlock.proto.nghttp2_lib import unavailable_reason

_PROBE = (
    "from originlock.proto.http2 import h2_codec, new_h2_server; "
    "print(type(new_h2_server()).__name__); print(h2_codec())"
)


def _probe(**env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ORIGINLOCK_H2_CODEC"} | env
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=environ, check=True)
    return out.stdout.splitlines()


def test_libnghttp2_is_the_codec_where_it_loads() -> None:
    if http2_ng.available() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"libnghttp2 is required under CI: {unavailable_reason()}")
        pytest.skip(f"libnghttp2 cannot be loaded: {unavailable_reason()}")
    kind, banner = _probe()
    assert kind == "NgH2Server"
    assert banner.startswith("nghttp2 1.")


def test_the_h2_codec_is_the_fallback_and_says_why() -> None:
    kind, banner = _probe(ORIGINLOCK_H2_CODEC="h2")
    assert kind == "H2Server"
    assert banner.startswith("h2 (pure Python") and "ORIGINLOCK_H2_CODEC=h2" in banner
