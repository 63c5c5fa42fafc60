"""Whether this process runs the mypyc-compiled request path (``pip install .``) or the source."""

from __future__ import annotations

from originlock.edge import fastpath

__all__ = ["hot_path_compiled", "hot_path_kind"]


def hot_path_compiled() -> bool:
    # A compiled module is an extension module: its file is the shared object, not the .py source.
    return not fastpath.__file__.endswith(".py")


def hot_path_kind() -> str:
    """Shown at startup: CPU per request roughly halves when compiled (docs/performance.md)."""
    return "compiled (mypyc)" if hot_path_compiled() else "interpreted (an editable install or no C compiler)"
