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
earlier connection through this context, or ``None`` for a full handshake) and the ``wrap_bio`` that starts
its own TLS takes it. The offer travels in a context variable: both loops start a connection's TLS in a
callback that runs in the context of the task that dialled (uvloop copies it when ``create_connection`` is
called, asyncio's ``call_soon`` when the transport is made), so a ``wrap_bio`` only ever sees the offer of
the dial it belongs to, whatever order concurrent dials' TCP connections complete in; a ``wrap_bio`` with
no offer in its context, or another context's or server name's, makes a full handshake. An offer is taken
once, and being taken tells the dial that its TCP connection was made (the TLS start follows it): the
connector tells a connect timeout (522) from a handshake timeout (525) by it while dialling in one step.

The session moves from the earlier connection to the new one in C (tls/libssl.py: ``SSL_get_session``,
``SSL_set_session``); each client TLS object made here notes its checked ``SSL *`` when it is made, so a later
dial reads the session from it without finding and checking that pointer again. Python's ``session`` attribute
would do it too, but both its getter and its setter copy the session through DER (a workaround for an OpenSSL
1.1.0 bug), which decodes the origin's certificate again: 107-121 µs each where the C transfer takes 1.5 µs,
and together the larger part of a resumed dial's CPU (docs/performance.md, issue 11). Where the C path cannot
be used, the attribute is.
"""

from __future__ import annotations

import contextlib
import ssl
from contextvars import ContextVar, Token
from typing import Any

from originlock.tls.libssl import openssl

__all__ = ["DirectSSLContext", "SessionOffer"]

#: The ``SSLObject`` methods that only forward to the C object, with the same arguments.
_FORWARDED = ("read", "write", "pending")
#: The attribute a client TLS object made here carries: (its context, its checked ``SSL *``).
_LINK = "_originlock_ssl"


class SessionOffer:
    """What the dial that made it resumes: the session of the TLS object ``resume_from`` (``None``: a full
    handshake), through ``context`` to ``server_hostname``; ``taken`` once that dial's TLS started (its TCP
    connection was made), ``withdrawn`` once the dial is over."""

    __slots__ = ("_token", "context", "resume_from", "server_hostname", "taken", "withdrawn")

    def __init__(self, context: DirectSSLContext, server_hostname: str, resume_from: ssl.SSLObject | None) -> None:
        self.context = context
        self.server_hostname = server_hostname
        self.resume_from = resume_from
        self.taken = False
        self.withdrawn = False
        self._token: Token[SessionOffer | None] | None = None


#: The offer of the dial whose task this code runs for (see the module docstring).
_DIAL_OFFER: ContextVar[SessionOffer | None] = ContextVar("originlock_dial_offer", default=None)


class DirectSSLContext(ssl.SSLContext):
    #: This context's ``SSL_CTX *`` once checked (0: the C path is not usable).
    _pointer: int

    def offer_session(self, server_hostname: str, resume_from: ssl.SSLObject | None) -> SessionOffer:
        """Resume the session of ``resume_from`` (a connection through this context; ``None`` for a full
        handshake) on the ``wrap_bio`` for ``server_hostname`` that the calling task's dial makes next;
        :meth:`withdraw` the offer when the connection attempt is over, in the same task."""
        offer = SessionOffer(self, server_hostname, resume_from)
        offer._token = _DIAL_OFFER.set(offer)
        return offer

    def withdraw(self, offer: SessionOffer) -> None:
        """End ``offer``: later connections started in this task's context do not see it."""
        offer.withdrawn = True
        token, offer._token = offer._token, None
        if token is not None:
            try:
                _DIAL_OFFER.reset(token)
            except ValueError:  # withdrawn from another context than it was made in
                if _DIAL_OFFER.get() is offer:
                    _DIAL_OFFER.set(None)

    def _take_offer(self, server_hostname: str | bytes | None) -> ssl.SSLObject | None:
        offer = _DIAL_OFFER.get()
        if offer is None or offer.taken or offer.withdrawn or offer.context is not self:
            return None
        if offer.server_hostname != server_hostname:
            return None
        offer.taken = True
        return offer.resume_from

    def _link(self, obj: ssl.SSLObject, inner: Any, resume_from: ssl.SSLObject | None) -> bool:
        """Note ``obj``'s checked ``SSL *`` on it (for the dials that resume from it later) and give it the
        session of ``resume_from``, in C; False where the C path cannot be used (another Python layout)."""
        lib = openssl()
        pointer = getattr(self, "_pointer", None)
        if pointer is None:
            pointer = self._pointer = (lib.ssl_ctx(self) if lib is not None else None) or 0
        if lib is None or not pointer or inner is None:
            return False
        target = lib.ssl_of(inner, pointer)
        if not target:
            return False
        # The context with the pointer: a connection of another context is never resumed from (its
        # session may carry another client certificate's identity).
        setattr(obj, _LINK, (self, target))
        if resume_from is None:
            return True
        link = getattr(resume_from, _LINK, None)
        if link is None or link[0] is not self:
            return False
        # Borrowed (SSL_get_session): SSL_set_session takes its own reference, and nothing runs between.
        session = lib.get_session(link[1])
        if session and lib.session_is_resumable(session):
            lib.set_session(target, session)
        return True

    def _resume(self, obj: ssl.SSLObject, resume_from: ssl.SSLObject) -> None:
        """Give ``obj`` (not yet started) the session of ``resume_from`` through Python's ``session``
        attribute, where the C path cannot be used."""
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
        inner: Any = getattr(obj, "_sslobj", None)
        if inner is not None:
            for name in _FORWARDED:
                setattr(obj, name, getattr(inner, name))
        if not server_side and not self._link(obj, inner, resume_from) and resume_from is not None:
            self._resume(obj, resume_from)
        return obj
