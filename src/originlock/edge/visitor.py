"""The visitor's connection as the pipeline and the access log see it (one object per connection).

Its own module so that it is compiled with the request path (``buildtools/hotpath.py``): ``new_context``
reads five of its attributes per request, each a dictionary-free slot read once compiled where the
interpreted class cost a generic attribute lookup (docs/performance.md, issue 11, pooled4).
``edge/stream.py`` re-exports it.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

__all__ = ["Visitor", "tls_object"]


class Visitor:
    """Facts about the visitor's connection that the pipeline and the access log read."""

    __slots__ = ("client_ip", "client_port", "scheme", "sni", "tls_version")

    def __init__(
        self,
        scheme: str,
        client_ip: str = "",
        client_port: int = 0,
        sni: str | None = None,
        tls_version: str | None = None,
    ) -> None:
        self.scheme = scheme
        self.client_ip = client_ip
        self.client_port = client_port
        self.sni = sni
        self.tls_version = tls_version

    def learn(self, transport: asyncio.BaseTransport) -> None:
        """Fill in the address from the visitor's connection, and its TLS version unless the admission,
        which reads the TLS object for ALPN, gave it already (:meth:`learn_tls`)."""
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            # uvloop and asyncio give ``(str, int, ...)``: kept as they are, where ``str()`` and ``int()`` were
            # two generic calls per connection (≈ 0.4k instructions compiled; issue 11, visitor7).
            host, port = peer[0], peer[1]
            self.client_ip = host if isinstance(host, str) else str(host)
            self.client_port = port if isinstance(port, int) else int(port)
        if self.tls_version is None:
            ssl_obj = transport.get_extra_info("ssl_object")
            if isinstance(ssl_obj, ssl.SSLObject):
                self.learn_tls(tls_object(ssl_obj))

    def learn_tls(self, tls: Any) -> None:
        """The TLS version from the connection's C object (:func:`tls_object`). ``sni`` stays None: on the
        server side CPython keeps no server name on the object (the SNI callback sees it)."""
        self.tls_version = tls.version()


def tls_object(ssl_obj: Any) -> Any:
    """The ``_ssl`` C object under ``ssl_obj``, or ``ssl_obj`` itself where a Python version has none.

    ``SSLObject``'s ``server_hostname``, ``version()``, ``selected_alpn_protocol()`` and ``context`` only
    forward to it, each through an interpreted frame: read once per visitor connection, between the
    handshake's crypto (docs/performance.md, issue 11, visitor5). The same values either way.
    """
    return getattr(ssl_obj, "_sslobj", ssl_obj)
