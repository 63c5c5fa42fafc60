"""Client ``SSLContext`` per distinct origin TLS profile, cached.

One context per (verification mode, trust store, client certificate fingerprint): building one costs
~1.5 ms (performance.md §4.2).

TLS sessions to origins are resumed (an abbreviated handshake: no certificate exchange, no signatures),
cached per pool key: origin address and port, SNI, verification and trust store with its revoked
certificates, client-certificate identity and version, FIPS profile. A session is therefore never
offered under another identity, to another origin, or after the trust or revocation set changed; the
sessions of a retired client certificate are dropped with its context. A session is only offered through
the context it came from (OpenSSL refuses others). What is kept per key is the last connection's TLS
object, whose session is read at the next dial: TLS 1.3 tickets arrive after the handshake.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable

from originlock.origin.peer import OriginPeer, PoolKey, VerifyMode
from originlock.tls.direct import DirectSSLContext, SessionOffer
from originlock.tls.memory import load_chain_from_memory

__all__ = ["FIPS_GROUP", "FIPS_TLS12_CIPHERS", "OriginTlsContexts"]

#: ECDHE key exchange with AES-GCM, ECDSA or RSA authentication: FIPS-approved (SP 800-52 Rev. 2).
FIPS_TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
    )
)
#: The one key-exchange group of FIPS pulls: X25519 is not approved for key agreement (SP 800-56A Rev. 3
#: lists NIST curves only), and Python's ``set_ecdh_curve`` sets a single group; P-256 is the group every
#: TLS 1.2 server supports.
FIPS_GROUP = "prime256v1"
#: Contexts kept; more distinct client certificates than this evict the least recently used.
MAX_CONTEXTS = 4096


@functools.cache
def _default_verify_flags() -> ssl.VerifyFlags:
    """The verification flags ``ssl.create_default_context()`` sets on this Python (3.13 added
    ``VERIFY_X509_STRICT`` and ``VERIFY_X509_PARTIAL_CHAIN``), so strict pulls check what they checked when
    their contexts came from it."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH).verify_flags


class _Session:
    """A pool key's session source: the TLS object of the last connection made under it, and its context
    (a session is only ever offered through the context it came from)."""

    __slots__ = ("context", "source")

    def __init__(self, context: DirectSSLContext, source: ssl.SSLObject) -> None:
        self.context = context
        self.source = source


class OriginTlsContexts:
    """Builds and caches origin-facing client contexts."""

    def __init__(self, *, max_contexts: int = MAX_CONTEXTS) -> None:
        self._cache: dict[tuple[str, str, str, bool], DirectSSLContext] = {}
        self._max = max_contexts
        #: pool key -> its session source, updated in place by each new connection under that key.
        self._sessions: dict[PoolKey, _Session] = {}
        #: The key last looked up in ``_sessions`` and its entry: a dial offers the key's session and then
        #: remembers its own, and the next dial to that origin does the same, each found by identity where a
        #: lookup hashes the 8-field key (three times per dial). Forgotten whenever an entry is removed.
        self._last_key: PoolKey | None = None
        self._last_session: _Session | None = None
        #: The peer :meth:`for_peer` answered last and its context: peers are cached per route, so a run of
        #: dials to one origin skips building the cache key (four attribute reads, two of them properties)
        #: and moving its entry to the end. Forgotten when a context is retired.
        self._last_peer: OriginPeer | None = None
        self._last_ctx: DirectSSLContext | None = None

    def offer_session(self, peer: OriginPeer, ctx: DirectSSLContext) -> SessionOffer:
        """Offer the session of ``peer``'s last connection to the next handshake through ``ctx`` (see
        ``tls/direct.py``), or a full handshake (an offer of ``None``) when there is none: every dial makes
        an offer, so that none takes another dial's."""
        last = self._session(peer.pool_key())
        return ctx.offer_session(peer.sni, last.source if last is not None and last.context is ctx else None)

    def _session(self, key: PoolKey) -> _Session | None:
        if key is self._last_key:
            return self._last_session
        found = self._sessions.get(key)
        if found is not None:
            self._last_key, self._last_session = key, found
        return found

    def remember(self, peer: OriginPeer, ctx: DirectSSLContext, ssl_object: ssl.SSLObject | None) -> None:
        """Keep the TLS object of a connection just established, for the next dial's session."""
        if ssl_object is None:
            return
        key = peer.pool_key()
        found = self._session(key)
        if found is not None:
            found.context, found.source = ctx, ssl_object
            return
        if len(self._sessions) >= self._max:
            self._sessions.pop(next(iter(self._sessions)))
            self._last_key = self._last_session = None
        session = self._sessions[key] = _Session(ctx, ssl_object)
        self._last_key, self._last_session = key, session

    def forget_sessions(self, keep: Callable[[PoolKey], bool]) -> None:
        """Drop the sessions whose key ``keep`` refuses (a new trust store or revocation set)."""
        self._last_key = self._last_session = None
        for key in [k for k in self._sessions if not keep(k)]:
            del self._sessions[key]

    def for_peer(self, peer: OriginPeer) -> DirectSSLContext:
        if peer is self._last_peer and self._last_ctx is not None:
            return self._last_ctx  # the most recently used entry already: nothing to move
        key = (peer.verify.value, peer.trust, peer.fingerprint, peer.fips)
        ctx = self._cache.pop(key, None)
        if ctx is None:
            ctx = self._build(peer)
            if len(self._cache) >= self._max:
                self._cache.pop(next(iter(self._cache)))
        self._cache[key] = ctx
        self._last_peer, self._last_ctx = peer, ctx
        return ctx

    def retire(self, keep_fingerprints: frozenset[str]) -> None:
        """Forget contexts whose client certificate is no longer in the snapshot."""
        self._last_peer = self._last_ctx = None
        for key in [k for k in self._cache if k[2] and k[2] not in keep_fingerprints]:
            del self._cache[key]
        self.forget_sessions(lambda key: not key.fingerprint or key.fingerprint in keep_fingerprints)

    @staticmethod
    def _build(peer: OriginPeer) -> DirectSSLContext:
        ctx = DirectSSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the hostname by default
        if peer.verify is VerifyMode.STRICT:
            # What ssl.create_default_context() does, except that SSLKEYLOGFILE is not honoured: the edge
            # never writes TLS secrets to a file.
            ctx.verify_flags = _default_verify_flags()
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
            if peer.origin_ca_pem:
                ctx.load_verify_locations(cadata=peer.origin_ca_pem.decode())
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if peer.fips:
            # FIPS-approved suites only. Python's ssl cannot restrict TLS 1.3 suites (no
            # SSL_CTX_set_ciphersuites), and OpenSSL offers ChaCha20-Poly1305 there, which FIPS does not
            # approve; so FIPS pulls use TLS 1.2 with ECDHE key exchange and AES-GCM, all approved.
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(FIPS_TLS12_CIPHERS)
            ctx.set_ecdh_curve(FIPS_GROUP)  # OpenSSL's default groups start with X25519
        ctx.set_alpn_protocols(["http/1.1"])
        if peer.client_cert is not None:
            load_chain_from_memory(ctx, peer.client_cert.chain_pem, peer.client_cert.key_pem)
        return ctx
