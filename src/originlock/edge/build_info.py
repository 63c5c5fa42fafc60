"""Whether this process runs the mypyc-compiled request path (``pip install .``) or the source, and why."""

from __future__ import annotations

from pathlib import Path

import originlock
from originlock.edge import exchange
from originlock.proto import http1_response

__all__ = ["head_splitter", "hot_path_compiled", "hot_path_kind"]

#: Written into wheels by the build (``buildtools/hotpath.py`` ``BUILD_FILE``); absent in a source tree.
BUILD_FILE = "hot_path_build.txt"

_WHY = {
    "no-compiler": "no C compiler was found when the wheel was built",
    "opted-out": "the wheel was built with ORIGINLOCK_PURE=1",
    "compiled": "the wheel's compiled modules are missing or were not loaded",
}


def hot_path_compiled() -> bool:
    # A compiled module is an extension module: its file is the shared object, not the .py source.
    return not exchange.__file__.endswith(".py")


def _build_record() -> str | None:
    try:
        return (Path(originlock.__file__).parent / BUILD_FILE).read_text(encoding="ascii").strip()
    except OSError:
        return None


def hot_path_kind() -> str:
    """Shown at startup: CPU per request roughly halves when compiled (docs/performance.md)."""
    if hot_path_compiled():
        return "compiled (mypyc)"
    record = _build_record()
    if record is None:
        why = "running from a source tree: an editable install or a checkout; `pip install .` compiles it"
    else:
        why = _WHY.get(record, f"unknown build record {record!r}")
    return f"interpreted ({why})"


def head_splitter() -> str:
    """Shown at startup: how HTTP/1 heads (origin responses, visitor requests) become fields (docs/performance.md,
    "Issue 11, h1head" and "reqhead")."""
    if http1_response.SPLIT_HEAD is not None:
        return "C (proto/_h1shim), after llhttp's strict checks"
    why = "a source tree" if _build_record() is None else "the wheel was built without it"
    return f"llhttp's per-field callbacks (the C splitter is not installed: {why})"
