"""An ``SSLContext`` whose TLS objects hand the event loop OpenSSL's own read, write and pending calls.

uvloop (like asyncio) drives TLS through ``SSLContext.wrap_bio``: an ``ssl.SSLObject`` over two memory BIOs.
``SSLObject.read``, ``write`` and ``pending`` are Python methods that only forward to the C object the
``_ssl`` module made (``SSLObject._sslobj``), and uvloop calls them several times per read and write: for
every request the edge pays an interpreted frame per call on both of its connections. This context's
objects carry the C object's bound methods as instance attributes instead (uvloop looks them up once, when
the connection starts), so those calls go straight to OpenSSL. Everything else about the object, and what
the calls do, is unchanged; if a Python version has no ``_sslobj``, the objects are left as they are.

Measured in docs/performance.md, step 7.
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["DirectSSLContext"]

#: The ``SSLObject`` methods that only forward to the C object, with the same arguments.
_FORWARDED = ("read", "write", "pending")


class DirectSSLContext(ssl.SSLContext):
    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        obj = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        inner: Any = getattr(obj, "_sslobj", None)
        if inner is not None:
            for name in _FORWARDED:
                setattr(obj, name, getattr(inner, name))
        return obj
