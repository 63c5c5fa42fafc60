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
from collections.abc import Callable, Coroutine
from typing import Any, Final

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

__all__ = ["Connector", "OriginDial", "OriginTimeouts"]

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
#: Out of file descriptors or socket buffers: the edge is overloaded, the origin is not at fault.
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def _tasks_by_loop() -> dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None:
    """asyncio's own record of the task each loop runs, where ``asyncio.current_task`` is a Python function
    that only reads it (3.11: a frame per dial); None where it is not a plain dict (then that function)."""
    tasks: object = getattr(asyncio.tasks, "_current_tasks", None)
    return tasks if type(tasks) is dict and asyncio.current_task.__module__ == "asyncio.tasks" else None


_TASKS: Final = _tasks_by_loop()
_CURRENT_TASK: Final[Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]] = asyncio.current_task


def _current_task(loop: asyncio.AbstractEventLoop) -> asyncio.Task[Any] | None:
    tasks = _TASKS
    return tasks.get(loop) if tasks is not None else _CURRENT_TASK(loop)


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

    def dial(self, peer: OriginPeer) -> OriginDial:
        """A dial of ``peer``, for the calling coroutine to drive (:class:`OriginDial` says how); its address
        is known when ``peer.host`` is an IP literal or a cached name.

        Raises:
            EdgeError: 521 (a port out of range), 1xxx (a server name that cannot be used).
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
        return OriginDial(self, peer, self._resolver.resolve_nowait(peer.host))

    async def connect(self, peer: OriginPeer) -> OriginConnection:
        """A new connection to ``peer``, TLS established when ``peer.tls``.

        Raises:
            EdgeError: 521-523, 525, 526, 530/1016 when a CNAME origin does not resolve, 503 when the edge
            is out of file descriptors.
        """
        # The steps of OriginDial, as OriginPool.acquire takes them too (in its own coroutine: see there).
        dial = self.dial(peer)
        if dial.address is None:
            await dial.resolve()
        connecting = dial.start()
        try:
            await connecting
        except BaseException as exc:
            raise dial.failed(exc)  # noqa: B904 (the edge error's cause is set by failed())
        return dial.established()


class OriginDial:
    """One dial, as steps the dialling coroutine takes around its one wait: :meth:`resolve` (only when
    ``address`` is None: a name not in the resolver's cache), :meth:`start` (the loop's
    ``create_connection``, to await), then :meth:`established` or, when the wait raised, :meth:`failed`.

    Why not a coroutine of its own: every coroutine between the task and the loop's ``create_connection`` is
    resumed at each of its suspensions (two per dial: TCP connected, TLS established) and hands its result
    up through ``StopIteration``; the dialling path was ``Exchange.run`` -> ``_forward`` ->
    ``OriginPool.acquire`` -> ``Connector.connect`` -> ``_tls_connect`` (docs/performance.md, issue 11,
    dial3). The dial is also the connect timeout's owner (one object, where a timer object per dial made
    another) and the protocol factory the loop calls.

    The connect timeout is the new connection's read deadline, on the connector's timer wheel, until the dial
    is over (:meth:`OriginConnection.watch_connect`): it cancels the dialling task when it fires before
    the dial's TLS started (its session offer untaken; a plain TCP dial has no offer and is cancelled
    whenever it fires), and does nothing after (the loop's handshake timeout runs then). It is told apart
    from other cancellations as ``asyncio.timeout`` does, by the task's cancel count, and fires up to
    ``WHEEL_RESOLUTION`` (50 ms) after the timeout, never before.
    """

    __slots__ = (
        "_cancelling",
        "_conn",
        "_connector",
        "_ctx",
        "_expired",
        "_offer",
        "_task",
        "address",
        "peer",
    )

    def __init__(self, connector: Connector, peer: OriginPeer, address: str | None) -> None:
        self._connector = connector
        self.peer = peer
        #: The IP address to connect to; None until :meth:`resolve` when the host is a name.
        self.address = address
        self._conn: OriginConnection | None = None
        self._ctx: DirectSSLContext | None = None
        self._offer: SessionOffer | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._expired = False

    async def resolve(self) -> None:
        """Resolve the host name (530/1016 when it does not resolve)."""
        self.address = await self._connector._resolver.resolve(self.peer.host, self.peer.port)

    def start(self) -> Coroutine[Any, Any, tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]:
        """The loop's connection attempt, for the caller to await at once, in the dialling task (the
        session offer travels in its context, and the connect timeout cancels it). A TLS origin is
        dialled in one step; the loop enforces the handshake timeout from the TLS start (525)."""
        connector = self._connector
        loop = connector._loop
        peer = self.peer
        address = self.address
        assert address is not None, "resolve() first"
        ctx: DirectSSLContext | None = None
        if peer.tls:
            contexts = connector._contexts
            ctx = self._ctx = contexts.for_peer(peer)
            self._offer = contexts.offer_session(peer, ctx)
        conn = self._conn = OriginConnection(loop, connector._limits, connector._timers)
        task = _current_task(loop)
        assert task is not None, "dial from a task"
        self._task = task
        self._cancelling = task.cancelling()
        # The connection's read deadline is the connect timeout until the dial is over: no deadline object
        # and bound method of the dial's own (docs/performance.md, issue 11, dial4).
        conn.watch_connect(self, connector._connect_timeout)
        if ctx is None:
            return loop.create_connection(self, address, peer.port)
        return loop.create_connection(
            self,
            address,
            peer.port,
            ssl=ctx,
            server_hostname=peer.sni,
            ssl_handshake_timeout=connector._handshake_timeout,
        )

    def __call__(self) -> OriginConnection:
        """The protocol factory the loop calls: this dial's connection (no closure made per dial)."""
        conn = self._conn
        assert conn is not None
        return conn

    def connect_expired(self) -> None:
        """The connect timeout passed (the connection's deadline says so): cancel the dialling task unless
        the dial's TLS already started (the loop's handshake timeout runs then)."""
        offer = self._offer
        task = self._task
        if task is not None and (offer is None or not offer.taken):
            self._expired = True
            task.cancel()

    def _end(self) -> None:
        """The wait is over: the connection's deadline no longer runs for this dial (nor holds it), the
        offer is withdrawn, and the task (which holds the coroutine that holds this dial) let go."""
        conn = self._conn
        if conn is not None:
            conn.connect_over()
        offer = self._offer
        if offer is not None:
            offer.context.withdraw(offer)
        self._task = None

    def established(self) -> OriginConnection:
        """The connection, once the awaited attempt returned; refused (526) when the origin's certificate
        was revoked, and then closed.

        Raises:
            OriginHandshakeFailed: the connection closed as the handshake finished (525).
            OriginCertInvalid: the origin presented a revoked certificate (526).
        """
        self._end()
        conn = self._conn
        ctx = self._ctx
        assert conn is not None
        if ctx is None:
            return conn
        peer = self.peer
        transport = conn.transport
        if transport is None:  # the connection closed as the handshake finished
            conn.close()
            raise OriginHandshakeFailed(f"TLS handshake with {peer.sni} failed: the origin closed the connection")
        ssl_object = transport.get_extra_info("ssl_object")
        if peer.revoked:  # strict pulls only (pipeline/builtin/origin_select.py)
            _refuse_revoked(conn, peer, ssl_object)
        # Only once the origin passed every check: a refused origin's session is never offered again.
        self._connector._contexts.remember(peer, ctx, ssl_object)
        return conn

    def failed(self, exc: BaseException) -> BaseException:
        """What to raise for ``exc``, raised by the awaited attempt: the edge error for a socket or TLS
        failure (521-523, 525, 526; 503 out of descriptors), 522 for this dial's own timeout, ``exc``
        itself otherwise (another cancellation, an edge error, a bug). The connection is closed."""
        task = self._task
        self._end()
        conn = self._conn
        if conn is not None:
            conn.close()
        peer = self.peer
        address = self.address
        error: EdgeError | None = None
        if isinstance(exc, asyncio.CancelledError):
            if self._expired and task is not None and task.uncancel() <= self._cancelling:
                error = OriginConnectTimeout(f"no answer from {address}:{peer.port}")
        elif not isinstance(exc, Exception) or isinstance(exc, EdgeError):
            pass
        elif self._offer is None or not self._offer.taken:
            # A plain TCP dial, or a TLS one whose TCP connection was never made.
            if isinstance(exc, OSError):
                error = _tcp_error(exc, str(address), peer.port)
        elif isinstance(exc, ssl.SSLCertVerificationError):
            error = OriginCertInvalid(f"origin certificate for {peer.sni}: {exc.verify_message}")
        elif isinstance(exc, (ssl.SSLError, OSError, TimeoutError, EOFError)):
            error = OriginHandshakeFailed(f"TLS handshake with {peer.sni} failed: {exc}")
        if error is None:
            return exc
        error.__cause__ = exc
        return error


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
