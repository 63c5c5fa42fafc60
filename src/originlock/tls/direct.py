"""An ``SSLContext`` whose TLS objects hand the event loop OpenSSL's own read, write and pending calls.

uvloop (like asyncio) drives TLS through ``SSLContext.wrap_bio``: an ``ssl.SSLObject`` over two memory BIOs.
``SSLObject.read``, ``write`` and ``pending`` are Python methods that only forward to the C object the
``_ssl`` module made (``SSLObject._sslobj``), and uvloop calls them several times per read and write: for
every request the edge pays an interpreted frame per call on both of its connections. This context's
objects carry the C object's bound methods as instance attributes instead (uvloop looks them up once, when
the connection starts), so those calls go straight to OpenSSL. Everything else about the object, and what
the calls do, is unchanged; if a Python version has no ``_sslobj``, the objects are left as they are.

Measured in docs/performance.md, step 7.

Client TLS sessions: the event loops call ``wrap_bio`` without ``session=`` (and uvloop insists on a plain
``str`` server name), so a dial *offers* its session first (:meth:`offer_session`) and the next ``wrap_bio``
for that server name takes it. Offers are taken in the order made, which is the order in which the loops
call ``wrap_bio``: both schedule the TLS start with ``call_soon`` in the same step that the dial makes its
offer. That only pairs each offer with its own dial if *every* dial through the context makes one, with
``None`` when it has no session to resume: a dial without an offer would take the offer of a later dial
to the same server name (another origin address or port behind the same SNI, whose session it must not
be given). An offer whose connection never reached ``wrap_bio`` is withdrawn by its maker, so offers
cannot drift to a later dial.
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["DirectSSLContext", "SessionOffer"]

#: The ``SSLObject`` methods that only forward to the C object, with the same arguments.
_FORWARDED = ("read", "write", "pending")


class SessionOffer:
    """What the next client connection to a server name resumes (``None``: nothing); ``taken`` once used."""

    __slots__ = ("server_hostname", "session", "taken")

    def __init__(self, server_hostname: str, session: ssl.SSLSession | None) -> None:
        self.server_hostname = server_hostname
        self.session = session
        self.taken = False


class DirectSSLContext(ssl.SSLContext):
    _offers: list[SessionOffer]

    def offer_session(self, server_hostname: str, session: ssl.SSLSession | None) -> SessionOffer:
        """Resume ``session`` (one of this context's; ``None`` for a full handshake) on the next ``wrap_bio``
        for ``server_hostname``; :meth:`withdraw` the offer when the connection attempt is over. Every
        client dial through this context must make one (see the module docstring)."""
        offer = SessionOffer(server_hostname, session)
        try:
            self._offers.append(offer)
        except AttributeError:
            self._offers = [offer]
        return offer

    def withdraw(self, offer: SessionOffer) -> None:
        if not offer.taken:
            self._offers.remove(offer)

    def _take_offer(self, server_hostname: str | bytes | None) -> ssl.SSLSession | None:
        offers: list[SessionOffer] | None = getattr(self, "_offers", None)
        if offers:
            for index, offer in enumerate(offers):
                if offer.server_hostname == server_hostname:
                    del offers[index]
                    offer.taken = True
                    return offer.session
        return None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if session is None and not server_side:
            session = self._take_offer(server_hostname)
        obj = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        inner: Any = getattr(obj, "_sslobj", None)
        if inner is not None:
            for name in _FORWARDED:
                setattr(obj, name, getattr(inner, name))
        return obj
