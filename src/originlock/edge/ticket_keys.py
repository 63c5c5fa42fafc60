"""Session-ticket keys shared by every edge process and rotated on a schedule.

A visitor resumes its TLS session with a ticket the edge encrypted; with ``--workers N`` its next
connection may land on another process (SO_REUSEPORT), which can only decrypt the ticket with the same
key. OpenSSL makes a random key per ``SSL_CTX``, and the workers are spawned (not forked) and build
their own contexts, so by default each process has its own key and a visitor moving between processes
gets a full handshake. Here every process derives the key of the current period from one secret that
``serve`` generates at start (:class:`~originlock.edge.config.EdgeConfig` passes it to the workers;
it is never written anywhere): ``HMAC-SHA256(secret, period)`` expanded to OpenSSL's 80-byte key (name,
HMAC key, AES key). A new period means a new key everywhere, at the same time, without coordination.

Python's ``ssl`` module has no ticket-key API; OpenSSL's ``SSL_CTX_set_tlsext_ticket_keys`` is a macro
over ``SSL_CTX_ctrl``, called here through ctypes on the context's ``SSL_CTX`` pointer, in the very
``libssl`` that ``_ssl`` uses (symbols looked up through the ``_ssl`` extension). The pointer is read from
CPython's ``PySSLContext`` (first field after the object header) and checked by asking OpenSSL for the
context's options: on any mismatch or missing symbol the edge keeps OpenSSL's per-process key (and says
so once in the log). One key at a time is what this call allows: a ticket issued just before a rotation
is not accepted after it (the visitor gets a full handshake once), which is why periods are long
(nginx's ``ssl_session_timeout`` is 5 minutes; tickets here live up to one period).
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import logging
import ssl
from collections.abc import Callable
from typing import Final

__all__ = ["ROTATION_SECONDS", "TicketKeys", "ticket_key"]

log = logging.getLogger("originlock.edge")

#: How long one ticket key is used for new tickets (and the longest a ticket stays resumable).
ROTATION_SECONDS: Final = 3600
#: OpenSSL's SSL_CTRL_{GET,SET}_TLSEXT_TICKET_KEYS and the key size (16-byte name, 32 HMAC, 32 AES).
_GET_KEYS: Final = 58
_SET_KEYS: Final = 59
KEY_BYTES: Final = 80


def ticket_key(secret: bytes, period: int) -> bytes:
    """The 80-byte ticket key of ``period`` (a counter of :data:`ROTATION_SECONDS`)."""
    label = period.to_bytes(8, "big")
    first = hmac.new(secret, b"originlock ticket key 1" + label, hashlib.sha256).digest()
    second = hmac.new(secret, b"originlock ticket key 2" + label, hashlib.sha256).digest()
    third = hmac.new(secret, b"originlock ticket key 3" + label, hashlib.sha256).digest()
    return (first + second + third)[:KEY_BYTES]


class _OpenSsl:
    """``SSL_CTX_ctrl`` and ``SSL_CTX_get_options`` of the libssl that ``_ssl`` is linked with."""

    def __init__(self) -> None:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)
        self.ctrl = lib.SSL_CTX_ctrl
        self.ctrl.restype = ctypes.c_long
        self.ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        self.get_options = lib.SSL_CTX_get_options
        self.get_options.restype = ctypes.c_uint64
        self.get_options.argtypes = [ctypes.c_void_p]

    def ssl_ctx(self, ctx: ssl.SSLContext) -> int | None:
        """The context's ``SSL_CTX *``, when it demonstrably is one (its options are the context's)."""
        pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if not pointer or self.get_options(pointer) != int(ctx.options):
            return None
        return pointer


class TicketKeys:
    """Installs the current period's key on a server context; :meth:`rotate` when a period may be over
    (the edge calls it from its once-a-second tick, ``VisitorTls.tick``, not from handshakes)."""

    def __init__(self, ctx: ssl.SSLContext, secret: bytes, clock: Callable[[], float]) -> None:
        self._ctx = ctx
        self._secret = secret
        self._clock = clock
        self._period = -1
        self._pointer: int | None = None
        self._openssl: _OpenSsl | None = None
        if not secret:
            return
        try:
            self._openssl = _OpenSsl()
            self._pointer = self._openssl.ssl_ctx(ctx)
        except (OSError, AttributeError, ValueError) as exc:
            log.warning("TLS ticket keys: OpenSSL not reachable (%s); each edge process keeps its own key", exc)
            return
        if self._pointer is None:
            log.warning("TLS ticket keys: unknown SSLContext layout; each edge process keeps its own key")
            return
        self.rotate()

    @property
    def shared(self) -> bool:
        """Whether the context uses the shared, rotating key (else OpenSSL's own per-process key)."""
        return self._period >= 0

    def rotate(self) -> None:
        """Install the key of the current period if it is not installed yet (cheap when it is)."""
        if self._pointer is None or self._openssl is None:
            return
        period = int(self._clock() // ROTATION_SECONDS)
        if period == self._period:
            return
        key = ctypes.create_string_buffer(ticket_key(self._secret, period), KEY_BYTES)
        if self._openssl.ctrl(self._pointer, _SET_KEYS, KEY_BYTES, key) == 1:
            self._period = period
        else:  # pragma: no cover - OpenSSL accepts any 80 bytes
            log.warning("TLS ticket keys: OpenSSL refused the key; keeping the previous one")

    def installed(self) -> bytes:
        """The key OpenSSL holds now (tests compare processes' keys by it; never logged)."""
        if self._pointer is None or self._openssl is None:
            return b""
        out = ctypes.create_string_buffer(KEY_BYTES)
        self._openssl.ctrl(self._pointer, _GET_KEYS, KEY_BYTES, out)
        return out.raw
