"""Which libnghttp2 session an :class:`~originlock.proto.http2_ng.NgH2Server` gets: the compiled shim
(``proto/_ngshim.c``) where it was built and loads, else cffi in ABI mode (``proto/nghttp2_cffi.py``), else
none (the edge then runs the ``h2`` codec); and what ``originlock serve``'s banner says of it.

- The compiled shim (built with the wheel): nghttp2's callbacks are C functions that append event tuples
  to one list, so one read is one call into C and one list back; response bytes wait in C-side queues that
  the data provider copies from without calling Python; it also checks request fields' bytes and builds
  response fields from an origin's (``proto/http2_request.py``'s ``checked``, ``send_raw_response``).
- Its fallback, cffi in ABI mode (no compiler, no headers), whose callbacks are Python functions behind
  libffi closures (about ten crossings per request) recording the same events.

Both have one interface, so the server is one code over either. ``ORIGINLOCK_H2_SHIM=0`` (read by
``nghttp2_lib.load_shim``) forces cffi, and tests force either with :func:`set_session_kind`.
"""

from __future__ import annotations

from typing import Any, Final

from originlock.proto import nghttp2_cffi
from originlock.proto import nghttp2_lib as ng

__all__ = ["CFFI", "SHIM", "available", "codec_description", "new_session", "session_kind", "set_session_kind"]

SHIM: Final = "shim"
CFFI: Final = "cffi"

#: A session kind forced for this process (tests run every codec path); empty: the best that loads.
_forced: list[str] = []


def set_session_kind(kind: str | None) -> None:
    """Force :data:`SHIM` or :data:`CFFI` for the servers made from now on (None: the best that loads)."""
    _forced.clear()
    if kind is not None:
        _forced.append(kind)


def session_kind() -> str | None:
    """The session new servers get: the compiled shim where it loads, else cffi, else None (no libnghttp2)."""
    if _forced:
        return _forced[0]
    if ng.load_shim() is not None:
        return SHIM
    if nghttp2_cffi.binding_version() is not None:
        return CFFI
    return None


def available() -> str | None:
    """libnghttp2's version if this codec can run, else None (``nghttp2_lib.unavailable_reason`` says why)."""
    kind = session_kind()
    if kind == SHIM:
        shim = ng.load_shim()
        return None if shim is None else str(shim.version)
    return nghttp2_cffi.binding_version() if kind == CFFI else None


def codec_description() -> str | None:
    """What ``originlock serve`` says of this codec: the version and which session runs it (and why not the
    shim); None when libnghttp2 cannot be used."""
    version = available()
    if version is None:
        return None
    if session_kind() == SHIM:
        return f"nghttp2 {version} (compiled shim)"
    return f"nghttp2 {version} (cffi ABI mode, the compiled shim's fallback: {ng.shim_unavailable_reason()})"


def new_session(kind: str, max_header_list: int) -> Any:
    """A session of ``kind`` (:data:`SHIM` or :data:`CFFI`) for a server whose header lists stop at
    ``max_header_list`` bytes."""
    if kind == SHIM:
        shim = ng.load_shim()
        if shim is None:
            raise RuntimeError(f"the compiled shim is not available: {ng.shim_unavailable_reason()}")
        return shim.Session(max_header_list)
    return nghttp2_cffi.CffiSession(max_header_list)
