"""Capping a visitor connection at TLS 1.2 by its server name, before OpenSSL chooses the version.

The zone setting ``tls_1_3`` (``off``) must keep TLS 1.3 away from that zone's hostnames only. The SNI
callback that ``ssl`` offers runs after OpenSSL has already chosen the protocol version, and switching the
connection to a context whose ``maximum_version`` is TLS 1.2 there changes nothing (the version stays 1.3).
OpenSSL's ClientHello callback (``SSL_CTX_set_client_hello_cb``) runs before the version is chosen, with the
raw ClientHello at hand: the server name is read from it (``SSL_client_hello_get0_ext``) and
``SSL_set_max_proto_version`` caps that one connection. Python's ``ssl`` exposes neither, so they are
called through ctypes (tls/libssl.py). Where that is not possible the cap is not installed and
:attr:`ClientHelloCap.installed` says so.

nginx enforces per-server ``ssl_protocols`` the same way (its ClientHello callback, since 1.25.5).

:func:`server_name_of` (the extension's parsing) is pure; the rest is the ctypes plumbing.
"""

from __future__ import annotations

import ctypes
import logging
import ssl
from collections.abc import Callable
from typing import Final

from originlock.tls.libssl import LibSsl, openssl

__all__ = ["ClientHelloCap", "server_name_of"]

log = logging.getLogger("originlock.edge")

#: TLS extension number of server_name (RFC 6066 §3) and its one name type, host_name.
_SERVER_NAME_EXT: Final = 0
_HOST_NAME: Final = 0
#: SSL_CTRL_SET_MAX_PROTO_VERSION (the macro SSL_set_max_proto_version) and TLS1_2_VERSION.
_SET_MAX_PROTO_VERSION: Final = 124
_TLS1_2_VERSION: Final = 0x0303
#: SSL_CLIENT_HELLO_SUCCESS: carry on with the handshake.
_SUCCESS: Final = 1

_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
#: A NULL callback: SSL_CTX_set_client_hello_cb(ctx, NULL, NULL) removes it.
_NO_CALLBACK = _Callback()


def server_name_of(extension: bytes) -> str | None:
    """The host_name of a ClientHello's server_name extension body, lower-cased without a trailing dot;
    None when it is malformed, names no host, or is not an ASCII name (OpenSSL refuses those itself)."""
    if len(extension) < 2 or int.from_bytes(extension[:2], "big") != len(extension) - 2:
        return None
    at = 2
    while at + 3 <= len(extension):
        kind = extension[at]
        size = int.from_bytes(extension[at + 1 : at + 3], "big")
        name = extension[at + 3 : at + 3 + size]
        if len(name) != size:
            return None
        if kind == _HOST_NAME:
            if not name or not name.isascii():
                return None
            return name.decode("ascii").rstrip(".").lower()
        at += 3 + size
    return None


class _ClientHelloCalls:
    """The ClientHello functions of libssl, with their C signatures."""

    def __init__(self, lib: LibSsl) -> None:
        self.set_client_hello_cb = lib.lib.SSL_CTX_set_client_hello_cb
        self.set_client_hello_cb.restype = None
        self.set_client_hello_cb.argtypes = [ctypes.c_void_p, _Callback, ctypes.c_void_p]
        self.get0_ext = lib.lib.SSL_client_hello_get0_ext
        self.get0_ext.restype = ctypes.c_int
        self.get0_ext.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_size_t),
        ]
        self.ssl_ctrl = lib.lib.SSL_ctrl
        self.ssl_ctrl.restype = ctypes.c_long
        self.ssl_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]


class ClientHelloCap:
    """Installs on ``ctx`` a ClientHello callback that caps at TLS 1.2 every connection whose server name
    ``tls12_only`` answers True for. ``tls12_only`` runs inside the handshake: it must be cheap and must not
    raise (an exception is logged and the connection goes on uncapped).

    The callback is a Python call through ctypes on every handshake (≈ 28k instructions, ≈ 6 µs), so it is
    only set while some hostname needs it: :meth:`enable` sets or clears it (``installed`` says whether it
    could be set at all, ``active`` whether it is set now)."""

    def __init__(self, ctx: ssl.SSLContext, tls12_only: Callable[[str], bool], *, active: bool = True) -> None:
        self._tls12_only = tls12_only
        self._openssl: _ClientHelloCalls | None = None
        self._pointer: int | None = None
        # Kept for the context's lifetime: OpenSSL holds only the C pointer of this callback.
        self._callback = _Callback(self._on_client_hello)
        self.installed = False
        self.active = False
        lib = openssl()
        pointer = lib.ssl_ctx(ctx) if lib is not None else None
        if lib is None or pointer is None:
            log.warning("tls_1_3 off: OpenSSL not reachable from Python here; TLS 1.3 stays on for every hostname")
            return
        try:
            calls = _ClientHelloCalls(lib)
        except AttributeError as exc:  # a libssl without the ClientHello callback (before OpenSSL 1.1.1)
            log.warning("tls_1_3 off: %s; TLS 1.3 stays on for every hostname", exc)
            return
        self._openssl = calls
        self._pointer = pointer
        self.installed = True
        self.enable(active)

    def enable(self, active: bool) -> None:
        """Set (True) or clear (False) the callback on the context; affects handshakes that start later."""
        if self._openssl is None or active == self.active:
            return
        self._openssl.set_client_hello_cb(self._pointer, self._callback if active else _NO_CALLBACK, None)
        self.active = active

    def _on_client_hello(self, ssl_pointer: int | None, _alert: int | None, _arg: int | None) -> int:
        openssl = self._openssl
        if openssl is None or not ssl_pointer:
            return _SUCCESS
        try:
            data = ctypes.c_void_p()
            size = ctypes.c_size_t()
            if openssl.get0_ext(ssl_pointer, _SERVER_NAME_EXT, ctypes.byref(data), ctypes.byref(size)) != 1:
                return _SUCCESS  # no SNI: the listener's own versions
            if not data.value:
                return _SUCCESS
            host = server_name_of(ctypes.string_at(data.value, size.value))
            if host is not None and self._tls12_only(host):
                openssl.ssl_ctrl(ssl_pointer, _SET_MAX_PROTO_VERSION, _TLS1_2_VERSION, None)
        except Exception:  # a ctypes callback must not raise: OpenSSL would see 0 and fail the handshake
            log.exception("tls_1_3 off: the ClientHello callback failed; this connection is not capped")
        return _SUCCESS
