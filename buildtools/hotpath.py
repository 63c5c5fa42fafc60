"""Which modules the wheel compiles with mypyc, and the setuptools glue that compiles them.

The edge's per-request path (parse -> route -> WAF hook -> pooled origin -> response) is plain typed
Python; compiled by mypyc the edge uses ≈ 1.4x nginx's CPU per request instead of ≈ 2.6x
(docs/performance.md, steps 5 to 7). The source stays the only implementation: the same ``.py`` files
are what editable installs and the test suite run, and what a wheel falls back to when no C compiler is
available.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

#: The request path, as files under src/. Modules outside it (control plane, store, WAF compiler) gain
#: nothing per request and keep their interpreted flexibility (monkeypatching, pickling, subclassing).
HOT_MODULES = (
    "originlock/proto/events.py",
    "originlock/proto/http1.py",
    "originlock/proto/serialize.py",
    "originlock/proto/target.py",
    "originlock/pipeline/context.py",
    "originlock/pipeline/decision.py",
    "originlock/pipeline/phases.py",
    "originlock/pipeline/builtin/forwarding.py",
    "originlock/pipeline/builtin/origin_select.py",
    "originlock/pipeline/builtin/ssl_mode.py",
    "originlock/pipeline/builtin/zone_router.py",
    "originlock/origin/connection.py",
    "originlock/origin/deadline.py",
    "originlock/origin/peer.py",
    "originlock/origin/pool.py",
    "originlock/origin/pool_state.py",
    "originlock/edge/fastpath.py",
    "originlock/edge/downstream.py",
    "originlock/edge/exchange.py",
    "originlock/edge/server.py",
    "originlock/snapshot/model.py",
    # `originlock serve` always installs the WAF hook: a zone without rules costs one call into it.
    "originlock/pipeline/builtin/waf.py",
)

#: Set by the build backend for wheels (``pip install .``); editable installs stay interpreted so that
#: edits to the source take effect. ``ORIGINLOCK_PURE=1`` turns compilation off for a wheel too.
COMPILE_ENV = "ORIGINLOCK_COMPILE"
PURE_ENV = "ORIGINLOCK_PURE"

#: The build environment has mypy but not the runtime dependencies: their types are unknown (Any) there,
#: which costs nothing on the hot path, whose own types are all declared.
MYPY_FLAGS = ("--ignore-missing-imports", "--config-file=", "--no-warn-unused-ignores")


def _warn(message: str) -> None:
    print(f"originlock build: {message}", file=sys.stderr)


def extensions(src: Path) -> list[Any]:
    """The compiled modules of ``src`` (cwd-relative paths are what mypyc wants), or [] when not asked
    for or when mypyc refuses the code; the package then installs interpreted, which works the same."""
    if os.environ.get(COMPILE_ENV) != "1" or os.environ.get(PURE_ENV) == "1":
        return []
    try:
        from mypyc.build import mypycify

        paths = [str(src / module) for module in HOT_MODULES]
        return list(mypycify([*MYPY_FLAGS, *paths], group_name="originlock", opt_level="3"))
    except (Exception, SystemExit) as exc:  # mypy reports type errors by exiting
        _warn(f"mypyc could not compile the hot path ({exc!r}); installing it interpreted")
        return []


def tolerant_build_ext(base: Any) -> Any:
    """``build_ext`` that installs the interpreted modules instead of failing when there is no working C
    compiler: a fresh machine without gcc still gets a working (slower) edge."""

    class BuildExt(base):  # type: ignore[misc, valid-type]
        def run(self) -> None:
            try:
                super().run()
            except Exception as exc:  # CCompilerError, DistutilsError, OSError: all mean "no compiler"
                _warn(f"compiling the hot path failed ({exc}); installing it interpreted")
                # A module's .so without the shared runtime library would fail to import: drop them all.
                for ext in self.extensions:
                    Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
                self.extensions = []

    return BuildExt
