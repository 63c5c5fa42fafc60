"""Dialling an origin: resolve, TCP connect, TLS handshake with the AOP client certificate.

The one place where socket and TLS exceptions of the *connect* step become edge errors (spec §7):
ECONNREFUSED -> 521, connect timeout -> 522, EHOSTUNREACH/ENETUNREACH -> 523, certificate validation
failure (strict modes) -> 526, any other handshake failure or timeout -> 525. A TLS origin is dialled in
one step (``create_connection(ssl=...)``): dialling TCP first and then calling ``start_tls`` costs uvloop a
second transport, a protocol switch and two more event-loop registrations per dial (docs/performance.md,
issue 11, dial2). A slow handshake is still not reported as 522: the session offer every dial makes is
taken when its TLS starts, i.e. once its TCP connection is made (tls/direct.py), so the connect timeout
only fires while the offer is untaken, the loop's handshake timeout runs from the TLS start, and a failure
is mapped as a TCP one (521-523) or a TLS one (525, 526) by the same mark.

Revocation (strict modes): OpenSSL has accepted the chain, but an Origin CA certificate revoked through
``DELETE /certificates/{id}`` must no longer be trusted (Cloudflare answers 526). The snapshot lists the
revoked leaves by SHA-256 fingerprint; the leaf's DER is what the finished handshake hands over, so the
check is one hash and one dict lookup per *new* connection, none per request (pooled connections are
kept apart by the peer's pool key instead, origin/peer.py). An origin presenting a revoked certificate
is disconnected before a request byte is written.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import socket
import ssl

from originlock.errors import (
    EdgeError,
    EdgeOverloaded,
    OriginCertInvalid,
    OriginConnectTimeout,
    OriginHandshakeFailed,
    OriginRefused,
    OriginSniUnusable,
    OriginUnreachable,
)
from originlock.origin.connection import OriginConnection
from originlock.origin.deadline import TimerWheel
from originlock.origin.peer import OriginPeer
from originlock.origin.resolve import Resolver
from originlock.origin.server_name import check_port, server_name_error
from originlock.origin.timeouts import OriginTimeouts
from originlock.origin.tls import OriginTlsContexts
from originlock.proto.http1 import DEFAULT_LIMITS, Limits
from originlock.tls.direct import DirectSSLContext, SessionOffer

__all__ = ["Connector", "OriginTimeouts"]

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
#: Out of file descriptors or socket buffers: the edge is overloaded, the origin is not at fault.
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Connector:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        resolver: Resolver,
        contexts: OriginTlsContexts,
        timeouts: OriginTimeouts,
        limits: Limits = DEFAULT_LIMITS,
        *,
        timers: TimerWheel | None = None,
    ) -> None:
        self._loop = loop
        self._resolver = resolver
        self._contexts = contexts
        # Read per dial: plain floats (compiled, unboxed) rather than attributes of the interpreted timeouts.
        self._connect_timeout = timeouts.connect
        self._handshake_timeout = timeouts.handshake
        self._limits = limits
        #: The connect timeouts of dials and the read deadlines of the connections they make: one wheel
        #: (the edge's, shared with the visitors' deadlines) instead of a loop timer per dial and per
        #: connection (docs/performance.md, issue 11, origindial).
        self._timers = timers if timers is not None else TimerWheel(loop)
        #: The last TLS peer dialled, once its server name and port passed the checks: peers are cached per
        #: route (pipeline/builtin/origin_select.py), so a run of dials to one origin checks them once.
        #: A peer is immutable; its context and session are looked up afresh at every dial.
        self._checked: OriginPeer | None = None

    async def connect(self, peer: OriginPeer) -> OriginConnection:
        """A new connection to ``peer``, TLS established when ``peer.tls``.

        Raises:
            EdgeError: 521-523, 525, 526, 530/1016 when a CNAME origin does not resolve, 503 when the edge
            is out of file descriptors.
        """
        # Snapshot values are checked before any socket exists (origin/server_name.py says why).
        if peer is not self._checked:
            if not check_port(peer.port):
                raise OriginUnreachable(f"origin port {peer.port} is not 1-65535")
            if peer.tls:
                problem = server_name_error(peer.sni)
                if problem is not None:
                    raise OriginSniUnusable(
                        f"the origin server name (SNI) {peer.sni[:300]!r} cannot be used: {problem}"
                    )
            self._checked = peer
        resolver = self._resolver
        address = resolver.resolve_nowait(peer.host) or await resolver.resolve(peer.host, peer.port)
        if not peer.tls:
            return await self._tcp_connect(address, peer.port)
        conn, ctx = await self._tls_connect(address, peer)
        transport = conn.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if peer.revoked:  # strict pulls only (pipeline/builtin/origin_select.py)
            _refuse_revoked(conn, peer, ssl_object)
        # Only once the origin passed every check: a refused origin's session is never offered again.
        self._contexts.remember(peer, ctx, ssl_object)
        return conn

    async def _tcp_connect(self, address: str, port: int) -> OriginConnection:
        """A TCP connection to ``address`` (an IP literal), made by the loop in C: a Python socket object
        and ``sock_connect`` cost a resumed dial ~10 % more (docs/performance.md, issue 11)."""
        conn = OriginConnection(self._loop, self._limits, self._timers)
        timer = _ConnectTimer(self._loop, self._timers, self._connect_timeout, None)
        try:
            await self._loop.create_connection(lambda: conn, address, port)
        except asyncio.CancelledError as exc:
            conn.close()
            if timer.expired_now():
                raise OriginConnectTimeout(f"no answer from {address}:{port}") from exc
            raise
        except OSError as exc:
            raise _tcp_error(exc, address, port) from exc
        finally:
            timer.cancel()
        return conn

    async def _tls_connect(self, address: str, peer: OriginPeer) -> tuple[OriginConnection, DirectSSLContext]:
        """TCP and TLS to ``address`` in one step; the connection and the context it was made with."""
        loop = self._loop
        contexts = self._contexts
        ctx = contexts.for_peer(peer)
        conn = OriginConnection(loop, self._limits, self._timers)
        offer = contexts.offer_session(peer, ctx)
        timer = _ConnectTimer(loop, self._timers, self._connect_timeout, offer)
        try:
            # The loop enforces the handshake timeout from the TLS start (ConnectionAbortedError, 525).
            await loop.create_connection(
                lambda: conn,
                address,
                peer.port,
                ssl=ctx,
                server_hostname=peer.sni,
                ssl_handshake_timeout=self._handshake_timeout,
            )
        except asyncio.CancelledError as exc:
            conn.close()
            if timer.expired_now():
                raise OriginConnectTimeout(f"no answer from {address}:{peer.port}") from exc
            raise
        except BaseException as exc:
            conn.close()
            if not isinstance(exc, Exception) or isinstance(exc, EdgeError):
                raise
            if not offer.taken:  # the TCP connection was never made
                if isinstance(exc, OSError):
                    raise _tcp_error(exc, address, peer.port) from exc
                raise
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise OriginCertInvalid(f"origin certificate for {peer.sni}: {exc.verify_message}") from exc
            if isinstance(exc, (ssl.SSLError, OSError, TimeoutError, EOFError)):
                raise OriginHandshakeFailed(f"TLS handshake with {peer.sni} failed: {exc}") from exc
            raise
        finally:
            timer.cancel()
            ctx.withdraw(offer)
        if conn.transport is None:  # the connection closed as the handshake finished
            conn.close()
            raise OriginHandshakeFailed(f"TLS handshake with {peer.sni} failed: the origin closed the connection")
        return conn, ctx


class _ConnectTimer:
    """The connect timeout of a dial, on the connector's timer wheel: cancels the dialling task when it fires
    before the dial's TLS started (its session offer untaken; a plain TCP dial has no offer and is cancelled
    whenever it fires), and does nothing after (the loop's handshake timeout runs then). Told apart from
    other cancellations as ``asyncio.timeout`` does, by the task's cancel count. It fires up to
    ``WHEEL_RESOLUTION`` (50 ms) after the timeout, never before."""

    __slots__ = ("_cancelling", "_deadline", "_expired", "_offer", "_task")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, timers: TimerWheel, delay: float, offer: SessionOffer | None
    ) -> None:
        task = asyncio.current_task(loop)
        assert task is not None, "dial from a task"
        self._task = task
        self._cancelling = task.cancelling()
        self._offer = offer
        self._expired = False
        self._deadline = timers.deadline(self._fire)
        self._deadline.arm(delay)

    def _fire(self) -> None:
        offer = self._offer
        if offer is None or not offer.taken:
            self._expired = True
            self._task.cancel()

    def expired_now(self) -> bool:
        """True when this timer's cancellation is the one being raised (and it is absorbed)."""
        return self._expired and self._task.uncancel() <= self._cancelling

    def cancel(self) -> None:
        """Leave the wheel; also breaks the cycle through the deadline's callback (a bound method)."""
        self._deadline.cancel()


def _tcp_error(exc: OSError, address: str, port: int) -> EdgeError:
    """The edge error for a failed TCP connect."""
    if isinstance(exc, ConnectionRefusedError):
        return OriginRefused(f"{address}:{port} refused the connection")
    if exc.errno in _UNREACHABLE or isinstance(exc, socket.gaierror):  # gaierror: "::1%bad" scope id
        return OriginUnreachable(f"no route to {address}: {exc.strerror}")
    if exc.errno in _EXHAUSTED:
        return EdgeOverloaded(f"no socket for the origin connection: {exc.strerror}")
    if exc.errno == errno.ETIMEDOUT:
        return OriginConnectTimeout(f"no answer from {address}:{port}")
    return OriginRefused(f"connecting to {address}:{port} failed: {exc}")


def _refuse_revoked(conn: OriginConnection, peer: OriginPeer, ssl_object: ssl.SSLObject | None) -> None:
    """Close ``conn`` and raise 526 when the origin's leaf is one of ``peer.revoked``.

    Raises:
        OriginCertInvalid: the leaf certificate was revoked, or could not be read to check (fail closed).
    """
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if der is None:  # cannot happen after a verified handshake; refuse rather than skip the check
        conn.close()
        raise OriginCertInvalid(f"origin certificate for {peer.sni}: could not be read to check revocation")
    cert_id = peer.revoked.get(hashlib.sha256(der).hexdigest())
    if cert_id is not None:
        conn.close()
        raise OriginCertInvalid(
            f"origin certificate for {peer.sni} was revoked (Origin CA certificate {cert_id}): "
            "install a new certificate on the origin"
        )
