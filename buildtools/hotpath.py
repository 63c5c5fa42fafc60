"""Which modules the wheel compiles with mypyc, and the setuptools glue that compiles them.

The edge's per-request path (parse -> route -> WAF hook -> pooled origin -> response) is plain typed
Python; compiled by mypyc the edge uses ≈ 1.4x nginx's CPU per request instead of ≈ 2.6x
(docs/performance.md, steps 5 to 7). The source stays the only implementation: the same ``.py`` files
are what editable installs and the test suite run, and what a wheel falls back to when no C compiler is
available or ``ORIGINLOCK_PURE=1`` says so. Any other failure to compile fails the build: a wheel that
silently installed the interpreted path would run at about twice the CPU per request.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: The request path, as files under src/. Modules outside it (control plane, store, WAF compiler) gain
#: nothing per request and keep their interpreted flexibility (monkeypatching, pickling, subclassing).
HOT_MODULES = (
    "originlock/cache.py",
    "originlock/proto/events.py",
    "originlock/proto/http1.py",
    "originlock/proto/http1_common.py",
    "originlock/proto/http1_response.py",
    "originlock/proto/field_lines.py",
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
    # A dial per request in the new-origin shapes: the connector and the TLS contexts' session cache.
    "originlock/origin/connector.py",
    "originlock/origin/tls.py",
    # Asked at every dial for the origin's address (an IP literal, or the cached answer for a name).
    "originlock/origin/resolve.py",
    "originlock/origin/deadline.py",
    "originlock/origin/peer.py",
    "originlock/origin/pool.py",
    "originlock/origin/pool_state.py",
    "originlock/edge/exchange.py",
    # VisitorStream, a trait: the exchange's calls on the visitor's stream are native calls.
    "originlock/edge/stream.py",
    # Read per request by new_context (edge/stream.py re-exports it).
    "originlock/edge/visitor.py",
    "originlock/edge/responses.py",
    "originlock/edge/http1.py",
    "originlock/edge/state.py",
    "originlock/edge/ray_ids.py",
    "originlock/edge/request_book.py",
    "originlock/edge/write_batch.py",
    # Once per visitor connection, between the handshake's crypto: the listener's protocol factory, the
    # protocol until the handshake is done, and the count of connections in their handshake.
    "originlock/edge/admission.py",
    "originlock/edge/visitors.py",
    # The SNI callback, inside every visitor handshake.
    "originlock/edge/visitor_tls.py",
    # The listener context's wrap_bio, once per visitor connection at its TLS start.
    "originlock/tls/server_wrap.py",
    "originlock/snapshot/model.py",
    # `originlock serve` always installs the WAF hook: a zone without rules costs one call into it.
    "originlock/pipeline/builtin/waf.py",
    # A zone with custom rules: the fields they read, filled per request from the request head.
    "originlock/pipeline/builtin/waf_fields.py",
    # A zone's rules: each ruleset's scan (a tree of tests) walked per request by compiled code.
    "originlock/waf/evaluator.py",
    # Origin Rules that route by hostname: remembered per host, asked by the WAF hook per request.
    "originlock/pipeline/builtin/origin_rules_memo.py",
    # `originlock serve` wraps the hook in the dashboard's recorder: one call per request.
    "originlock/dashboard/waf_recorder.py",
    # On by default: the access-log line and its buffer run once per request.
    "originlock/pipeline/builtin/access_log.py",
    "originlock/edge/access_log.py",
    # HTTP/2 visitors: the connection and its streams, the libnghttp2 codec's Python side (it handles the
    # session's events per read), the shared policy, the request/response field passes and the frame gate.
    # The cffi session (proto/nghttp2_cffi.py, the shim's fallback) is compiled too: its callbacks run per
    # header field and per frame. The h2 codec (proto/http2_h2.py, http2_conn.py) subclasses h2's classes and
    # stays interpreted: it is the last fallback.
    "originlock/proto/http2_events.py",
    "originlock/proto/http2_gate.py",
    "originlock/proto/http2_policy.py",
    "originlock/proto/http2_request.py",
    "originlock/proto/http2_ng.py",
    "originlock/proto/nghttp2_cffi.py",
    "originlock/edge/http2.py",
)

#: Set by the build backend for wheels (``pip install .``); editable installs stay interpreted so that
#: edits to the source take effect. ``ORIGINLOCK_PURE=1`` turns compilation off for a wheel too.
COMPILE_ENV = "ORIGINLOCK_COMPILE"
PURE_ENV = "ORIGINLOCK_PURE"

#: Written into the wheel next to ``originlock/__init__.py``: why its request path is what it is, so that
#: ``originlock serve`` can say so (``edge/build_info.py``). A source tree has no such file.
BUILD_FILE = "originlock/hot_path_build.txt"
COMPILED = "compiled"
NO_COMPILER = "no-compiler"
OPTED_OUT = "opted-out"

#: The build environment has mypy but not the runtime dependencies: their types are unknown (Any) there,
#: which costs nothing on the hot path, whose own types are all declared.
MYPY_FLAGS = ("--ignore-missing-imports", "--config-file=", "--no-warn-unused-ignores")


#: The HTTP/2 codec's C shim over libnghttp2 (docs/performance.md, "HTTP/2 codec: a compiled shim"). Built
#: with the compiled modules; optional: it needs only the runtime library (libnghttp2.so.14, its prototypes
#: are declared in the file), and a wheel without it runs the same codec through cffi
#: (``originlock serve`` says which).
SHIM_SOURCE = "originlock/proto/_ngshim.c"
SHIM_MODULE = "originlock.proto._ngshim"
NGHTTP2_LIBRARY = "nghttp2"
#: The HTTP/1.1 response head splitter (docs/performance.md, "Issue 11, h1head"): Python's C API only;
#: optional too (without it the response fields come through llhttp's callbacks).
H1_SHIM_SOURCE = "originlock/proto/_h1shim.c"
H1_SHIM_MODULE = "originlock.proto._h1shim"


class HotPathBuildError(RuntimeError):
    """mypyc or the C compiler failed although compilation was expected: the build fails rather than
    installing a silently slower edge."""


def _warn(message: str) -> None:
    print(f"originlock build: {message}", file=sys.stderr)


def c_compiler() -> str | None:
    """The C compiler setuptools would run (``$CC`` or Python's build-time ``CC``), if it is installed."""
    command = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    words = shlex.split(command)
    return shutil.which(words[0]) if words else None


def build_kind(environ: Mapping[str, str] | None = None, compiler: str | None = "") -> str | None:
    """What a build should produce: :data:`COMPILED`, :data:`NO_COMPILER`, :data:`OPTED_OUT`, or None when
    compilation was not asked for (an editable install or ``setup.py`` run by hand)."""
    env = os.environ if environ is None else environ
    if env.get(COMPILE_ENV) != "1":
        return None
    if env.get(PURE_ENV) == "1":
        return OPTED_OUT
    if (c_compiler() if compiler == "" else compiler) is None:
        return NO_COMPILER
    return COMPILED


def extensions(src: Path, kind: str | None, modules: Sequence[str] = HOT_MODULES) -> list[Any]:
    """The compiled modules of ``src`` (cwd-relative paths are what mypyc wants) when ``kind`` is
    :data:`COMPILED`, else [] (the package then installs interpreted, which works the same, slower).

    Raises:
        HotPathBuildError: mypyc refused the code (a type error in the import graph).
    """
    if kind != COMPILED:
        if kind is not None:
            _warn(f"installing the request path interpreted ({kind})")
        return []
    from mypyc.build import mypycify

    paths = [str(src / module) for module in modules]
    try:
        return list(mypycify([*MYPY_FLAGS, *paths], group_name="originlock", opt_level="3"))
    except SystemExit as exc:  # mypy reports type errors (printed above) by exiting
        raise HotPathBuildError(
            f"mypyc could not compile the request path (exit {exc.code}; errors above). "
            f"Set {PURE_ENV}=1 to install it interpreted (about twice the CPU per request)."
        ) from None


def nghttp2_link_args(found: str | None = "") -> list[str] | None:
    """How to link the shim against the runtime libnghttp2 (no ``-dev`` package: no ``libnghttp2.so``
    symlink, so the versioned file is named), or None when the library is not installed."""
    if found == "":
        import ctypes.util

        found = ctypes.util.find_library(NGHTTP2_LIBRARY)
    if not found:
        return None
    return [found] if os.path.isabs(found) else [f"-l:{found}"]


def shim_extensions(src: Path, kind: str | None, find: Callable[[], list[str] | None] = nghttp2_link_args) -> list[Any]:
    """The shim's extension when ``kind`` is :data:`COMPILED` and libnghttp2 is installed (``find``), else []
    (the codec then runs through cffi). Optional: a compile error warns and leaves it out."""
    if kind != COMPILED:
        return []
    args = find()
    if args is None:
        _warn("libnghttp2 not found: building without the HTTP/2 shim (the codec runs through cffi)")
        return []
    from setuptools import Extension

    return [
        Extension(
            SHIM_MODULE,
            [str(src / SHIM_SOURCE)],
            extra_compile_args=["-O2"],
            extra_link_args=args,
            optional=True,
        )
    ]


def h1_shim_extensions(src: Path, kind: str | None) -> list[Any]:
    """The response head splitter's extension when ``kind`` is :data:`COMPILED`, else []."""
    if kind != COMPILED:
        return []
    from setuptools import Extension

    return [Extension(H1_SHIM_MODULE, [str(src / H1_SHIM_SOURCE)], extra_compile_args=["-O2"], optional=True)]


def strict_build_ext(base: Any) -> Any:
    """``build_ext`` whose compile errors name the way out: a compiler that exists but fails is a broken
    build, never a quiet fallback."""

    class BuildExt(base):  # type: ignore[misc, valid-type]
        def run(self) -> None:
            try:
                super().run()
            except Exception as exc:  # CCompilerError, DistutilsError, OSError
                raise HotPathBuildError(
                    f"compiling the request path failed ({exc}). "
                    f"Set {PURE_ENV}=1 to install it interpreted (about twice the CPU per request)."
                ) from exc

    return BuildExt


def recording_build_py(base: Any, kind: str | None) -> Any:
    """``build_py`` that writes :data:`BUILD_FILE` (the build's kind) into the wheel."""

    class BuildPy(base):  # type: ignore[misc, valid-type]
        def run(self) -> None:
            super().run()
            if kind is not None and not getattr(self, "editable_mode", False):
                target = Path(self.build_lib) / BUILD_FILE
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(kind + "\n", encoding="ascii")

    return BuildPy
