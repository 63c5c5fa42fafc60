"""OpenSSL calls that Python's ``ssl`` does not offer, made through ctypes in the very ``libssl`` that
``_ssl`` is linked with (its symbols are looked up through the ``_ssl`` extension itself).

The C objects are reached through CPython's own structures: ``SSL_CTX *`` is the first field after the
object header of an ``SSLContext``, ``SSL *`` the second of the ``_ssl._SSLSocket`` behind an
``SSLObject`` (after a weak reference to its socket). Each pointer is checked before use: a context's by
asking OpenSSL for its options, a connection's by asking OpenSSL for its context. Where a check fails
(another Python layout), :func:`openssl` is None and callers keep to what ``ssl`` offers.

The library is loaded as a ``PyDLL``: its calls keep the GIL. Every function bound here returns at once
(reads and reference counts on in-memory structures, no I/O), so releasing and taking back the GIL around
each, as ``CDLL`` does, only cost instructions (a new origin connection makes four of these calls).
"""

from __future__ import annotations

import ctypes
import functools
import ssl
import sys
from typing import Any

__all__ = ["LibSsl", "openssl"]

_POINTER = ctypes.sizeof(ctypes.c_void_p)


class LibSsl:
    """The libssl functions the edge uses, with their C signatures."""

    def __init__(self) -> None:
        import _ssl

        lib = ctypes.PyDLL(_ssl.__file__)
        self.lib = lib
        self.ctx_get_options = self._fn("SSL_CTX_get_options", ctypes.c_uint64, ctypes.c_void_p)
        self.get_ssl_ctx = self._fn("SSL_get_SSL_CTX", ctypes.c_void_p, ctypes.c_void_p)
        self.get1_session = self._fn("SSL_get1_session", ctypes.c_void_p, ctypes.c_void_p)
        #: Borrowed: valid while the connection lives and makes no new session (use it at once).
        self.get_session = self._fn("SSL_get_session", ctypes.c_void_p, ctypes.c_void_p)
        self.set_session = self._fn("SSL_set_session", ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        self.session_free = self._fn("SSL_SESSION_free", None, ctypes.c_void_p)
        self.session_is_resumable = self._fn("SSL_SESSION_is_resumable", ctypes.c_int, ctypes.c_void_p)

    def _fn(self, name: str, restype: Any, *argtypes: Any) -> Any:
        fn = getattr(self.lib, name)
        fn.restype = restype
        fn.argtypes = list(argtypes)
        return fn

    def ssl_ctx(self, ctx: ssl.SSLContext) -> int | None:
        """The context's ``SSL_CTX *``, when it demonstrably is one (its options are the context's)."""
        pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if not pointer or self.ctx_get_options(pointer) != int(ctx.options):
            return None
        return pointer

    def ssl(self, obj: ssl.SSLObject, ctx_pointer: int) -> int | None:
        """The ``SSL *`` of ``obj``, when it demonstrably is one of the context at ``ctx_pointer``."""
        inner = getattr(obj, "_sslobj", None)
        if inner is None:
            return None
        return self.ssl_of(inner, ctx_pointer)

    def ssl_of(self, inner: object, ctx_pointer: int) -> int | None:
        """:meth:`ssl` given the ``_ssl._SSLSocket`` (``SSLObject._sslobj``) itself."""
        pointer = ctypes.c_void_p.from_address(id(inner) + object.__basicsize__ + _POINTER).value
        if not pointer or self.get_ssl_ctx(pointer) != ctx_pointer:
            return None
        return pointer


def _probe() -> LibSsl | None:
    """The library, if this Python's structures are the ones described above (checked on a throwaway
    context and connection)."""
    if not (3, 11) <= sys.version_info[:2] <= (3, 14):  # the layouts described were read for these
        return None
    try:
        lib = LibSsl()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx_pointer = lib.ssl_ctx(ctx)
        if ctx_pointer is None:
            return None
        obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="probe.invalid")
        if lib.ssl(obj, ctx_pointer) is None:
            return None
    except (OSError, AttributeError, ValueError):
        return None
    return lib


@functools.cache
def openssl() -> LibSsl | None:
    """The checked library, or None where it cannot be used safely (see the module docstring)."""
    return _probe()
