"""A listener context's ``wrap_bio`` in one compiled call.

uvloop (like asyncio) starts every accepted TLS connection with ``context.wrap_bio(incoming, outgoing,
server_side=True, server_hostname=None)``. Through ``ssl.SSLContext`` that is four interpreted frames around
the one C call that makes the OpenSSL connection (``_ssl._SSLContext._wrap_bio``): our
:class:`~originlock.tls.direct.DirectSSLContext` override, ``SSLContext.wrap_bio``,
``SSLContext._encode_hostname`` and ``SSLObject._create``. With a new visitor connection per request they were
≈ 6k instructions of every request, between the handshake's crypto (docs/performance.md, issue 11, visitor6).

:func:`install` gives a server context an instance attribute ``wrap_bio`` (which the event loops look up on
the context, as they would the method): a :class:`ServerWrap`, compiled with the request path
(``buildtools/hotpath.py``), that does what those frames do for a server-side call: the ``SSLObject`` (the
context's ``sslobject_class``, made without ``__init__`` as ``SSLObject._create`` makes it), its C object
with the ``SSLObject`` as owner (the SNI callback receives the ``SSLObject``, as before), and on it the C
object's ``read``, ``write`` and ``pending`` (what ``DirectSSLContext`` gives its objects) and the other
methods the event loop calls per connection whose ``SSLObject`` form only forwards (``do_handshake``,
``cipher``, ``compression``, ``unwrap``: ≈ 1.5k instructions a frame, ≈ 0.2k an attribute). Any other call
(client side, a server name, a session) goes to the class's ``wrap_bio``, unchanged.
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["ServerWrap", "install"]


class ServerWrap:
    """``wrap_bio`` of one server context (see the module docstring). It holds the context, which holds it:
    a listener's context lives as long as its process, and the cycle is the collector's if it does not."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        #: ``_ssl._SSLContext._wrap_bio`` bound to the context: the C call ``SSLContext.wrap_bio`` ends in.
        self._make: Any = getattr(context, "_wrap_bio")  # noqa: B009  # private: not in the type stubs
        self._cls: Any = context.sslobject_class

    def __call__(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        context = self._context
        if not server_side or server_hostname is not None or session is not None:
            return type(context).wrap_bio(context, incoming, outgoing, server_side, server_hostname, session)
        cls = self._cls
        obj: Any = cls.__new__(cls)
        inner = self._make(incoming, outgoing, True, None, owner=obj, session=None)
        obj._sslobj = inner
        # The forwarding methods of ssl.SSLObject, replaced by the C object's own (as DirectSSLContext does).
        obj.read = inner.read
        obj.write = inner.write
        obj.pending = inner.pending
        # And those the event loop calls once or a few times per connection (uvloop: do_handshake at each
        # handshake step, cipher and compression when it completes, unwrap at close): each an interpreted
        # frame around the same C call, with the same arguments (none) and result. Not getpeercert, whose
        # C form takes no keyword (``binary_form=``).
        obj.do_handshake = inner.do_handshake
        obj.cipher = inner.cipher
        obj.compression = inner.compression
        obj.unwrap = inner.shutdown
        result: ssl.SSLObject = obj
        return result


def install(context: ssl.SSLContext) -> None:
    """Make ``context``'s server-side ``wrap_bio`` calls one compiled call (see the module docstring); a
    Python whose contexts have no ``_wrap_bio`` keeps the class's."""
    if hasattr(context, "_wrap_bio"):
        context.wrap_bio = ServerWrap(context)  # type: ignore[method-assign]
