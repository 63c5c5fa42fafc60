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
``str`` server name), so a dial *offers* what to resume first (:meth:`offer_session`: the TLS object of an
earlier connection through this context) and the next ``wrap_bio`` for that server name takes it. Offers
are taken in the order made, which is the order in which the loops call ``wrap_bio``: both schedule the
TLS start with ``call_soon`` in the same step that the dial makes its offer. That only pairs each offer
with its own dial if *every* dial through the context makes one, with ``None`` when it has nothing to
resume: a dial without an offer would take the offer of a later dial to the same server name (another
origin address or port behind the same SNI, whose session it must not be given). An offer whose
connection never reached ``wrap_bio`` is withdrawn by its maker, so offers cannot drift to a later dial.

The session moves from the earlier connection to the new one in C (tls/libssl.py: ``SSL_get1_session``,
``SSL_set_session``). Python's ``session`` attribute would do it too, but both its getter and its setter
copy the session through DER (a workaround for an OpenSSL 1.1.0 bug), which decodes the origin's
certificate again: 107-121 µs each where the C transfer takes 1.5 µs, and together the larger part of a
resumed dial's CPU (docs/performance.md, issue 11). Where the C path cannot be used, the attribute is.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

from originlock.tls.libssl import openssl

__all__ = ["DirectSSLContext", "SessionOffer"]

#: The ``SSLObject`` methods that only forward to the C object, with the same arguments.
_FORWARDED = ("read", "write", "pending")


class SessionOffer:
    """What the next client connection to a server name resumes: the session of the TLS object
    ``resume_from`` (``None``: a full handshake); ``taken`` once used."""

    __slots__ = ("resume_from", "server_hostname", "taken")

    def __init__(self, server_hostname: str, resume_from: ssl.SSLObject | None) -> None:
        self.server_hostname = server_hostname
        self.resume_from = resume_from
        self.taken = False


class DirectSSLContext(ssl.SSLContext):
    _offers: list[SessionOffer]
    #: This context's ``SSL_CTX *`` once checked (0: the C path is not usable).
    _pointer: int

    def offer_session(self, server_hostname: str, resume_from: ssl.SSLObject | None) -> SessionOffer:
        """Resume the session of ``resume_from`` (a connection through this context; ``None`` for a full
        handshake) on the next ``wrap_bio`` for ``server_hostname``; :meth:`withdraw` the offer when the
        connection attempt is over. Every client dial through this context must make one (see the module
        docstring)."""
        offer = SessionOffer(server_hostname, resume_from)
        try:
            self._offers.append(offer)
        except AttributeError:
            self._offers = [offer]
        return offer

    def withdraw(self, offer: SessionOffer) -> None:
        if not offer.taken:
            self._offers.remove(offer)

    def _take_offer(self, server_hostname: str | bytes | None) -> ssl.SSLObject | None:
        offers: list[SessionOffer] | None = getattr(self, "_offers", None)
        if offers:
            for index, offer in enumerate(offers):
                if offer.server_hostname == server_hostname:
                    del offers[index]
                    offer.taken = True
                    return offer.resume_from
        return None

    def _resume(self, obj: ssl.SSLObject, resume_from: ssl.SSLObject) -> None:
        """Give ``obj`` (not yet started) the session of ``resume_from`` when it can be resumed."""
        lib = openssl()
        pointer = getattr(self, "_pointer", None)
        if pointer is None:
            pointer = self._pointer = (lib.ssl_ctx(self) if lib is not None else None) or 0
        if lib is not None and pointer:
            source, target = lib.ssl(resume_from, pointer), lib.ssl(obj, pointer)
            if source and target:
                session = lib.get1_session(source)
                if session:
                    if lib.session_is_resumable(session):
                        lib.set_session(target, session)
                    lib.session_free(session)
                return
        session = resume_from.session
        if session is not None and (session.has_ticket or session.id):  # the origin offered resumption
            with contextlib.suppress(ValueError):  # a session of another context: a full handshake
                obj.session = session

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        resume_from = self._take_offer(server_hostname) if session is None and not server_side else None
        obj = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        if resume_from is not None:
            self._resume(obj, resume_from)
        inner: Any = getattr(obj, "_sslobj", None)
        if inner is not None:
            for name in _FORWARDED:
                setattr(obj, name, getattr(inner, name))
        return obj
