"""Visitor-facing TLS: the certificate is chosen by SNI.

Each proxied hostname gets a certificate issued on demand by the deployment's edge CA (ECDSA P-256,
cached per hostname and CA), unless an uploaded custom certificate covers it (``Snapshot.edge_cert_for``),
which :meth:`VisitorTls._context_for` prefers. TLS 1.2 and 1.3 only, ALPN ``h2`` (preferred, as nginx and
Cloudflare do) and ``http/1.1``. A hostname's ``min_tls_version`` is enforced in the SNI callback when
OpenSSL already knows the negotiated version there, and again by the SSL_MODE phase.

A hostname whose zone turned ``tls_1_3`` off is capped at TLS 1.2 before OpenSSL chooses the version
(tls/client_hello.py): by the SNI callback the version is chosen, and switching the connection to a
context with a lower ``maximum_version`` there does not change it. Every context, the listener's and
each hostname's, comes from :func:`_server_context`, so they all offer the same ALPN protocols and suites.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from originlock.edge.ticket_keys import TicketKeys
from originlock.edge.visitor import tls_object
from originlock.snapshot.model import Snapshot
from originlock.tls.certs import load_certificates, load_private_key
from originlock.tls.client_hello import ClientHelloCap
from originlock.tls.direct import DirectSSLContext
from originlock.tls.issue import Issued, issue_leaf
from originlock.tls.memory import load_chain_from_memory
from originlock.tls.server_wrap import install as install_server_wrap

__all__ = ["VisitorTls"]

#: Validity of on-demand edge certificates (Let's Encrypt's 90 days); re-issued a day before expiry.
EDGE_CERT_DAYS = 90
#: Cached hostname contexts (each holds one certificate and key).
MAX_CACHED = 10_000
#: A cached hostname context is replaced this long before its certificate expires.
_RENEW_BEFORE = timedelta(days=1)
#: Name on the certificate served when SNI is absent or unknown.
FALLBACK_NAME = "originlock-edge.invalid"
_VERSIONS = {"TLSv1.2": "1.2", "TLSv1.3": "1.3"}
#: TLS 1.2 suites offered to visitors: ECDHE with AEAD ciphers only (Mozilla's "intermediate" profile
#: minus DHE). Python's default list adds CBC suites with HMAC-SHA1/SHA-256/SHA-384, which testssl flags
#: as potentially LUCKY13-vulnerable; every browser of the last decade has an AEAD suite. TLS 1.3 suites
#: are AEAD by definition (OpenSSL's defaults).
VISITOR_TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)


#: ALPN protocols offered to visitors, by the zone's ``http2`` setting.
_ALPN = {True: ["h2", "http/1.1"], False: ["http/1.1"]}


def _server_context(http2: bool = True) -> ssl.SSLContext:
    ctx = DirectSSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(_ALPN[http2])
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_ciphers(VISITOR_TLS12_CIPHERS)
    # Key exchange groups: OpenSSL's default list (X25519, P-256, X448, P-521, P-384), which is what nginx's
    # default ``ssl_ecdh_curve auto`` offers. ``set_ecdh_curve`` can only set one group (Python has no
    # SSL_CTX_set1_groups_list), so it is not called: pinning P-256 took X25519 away, and made every TLS 1.3
    # client that leads with an X25519 key share pay a HelloRetryRequest (a second ClientHello, a second SNI
    # callback and an extra round trip per connection).
    return ctx


def _any_tls12_only(snapshot: Snapshot) -> bool:
    """Whether some route's zone turned ``tls_1_3`` off (kept by the snapshot: no walk of its routes)."""
    return snapshot.any_tls12_only


class VisitorTls:
    def __init__(
        self,
        snapshots: Callable[[], Snapshot],
        clock: Callable[[], datetime],
        *,
        ticket_secret: bytes = b"",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._snapshots = snapshots
        self._clock = clock
        #: (host, certificate identity, http2) -> (context, when to replace it: a day before its expiry)
        self._cache: dict[tuple[str, str, bool], tuple[ssl.SSLContext, datetime]] = {}
        #: The edge CA's PEM, its identity (a hash of the PEM, computed once: the SNI callback asks for it at
        #: every handshake) and the loaded CA.
        self._ca: tuple[bytes, str, Issued] | None = None
        self.context = _server_context()
        self.context.sni_callback = self._on_sni
        # The event loop starts every accepted connection's TLS with this context's wrap_bio: one compiled
        # call instead of four interpreted frames (tls/server_wrap.py). The hostnames' contexts are only
        # switched to by the SNI callback, never asked to wrap.
        install_server_wrap(self.context)
        # Tickets are encrypted with the listener context's key even after the SNI callback switched the
        # connection to a hostname's context (OpenSSL's session context stays the first one).
        self.tickets = TicketKeys(self.context, ticket_secret, wall_clock)
        # Zone setting tls_1_3 off: capped per connection from the ClientHello's server name. The callback
        # is set only while some route has it off (see _follow).
        snapshot = self._snapshots()
        self._capped_for: Snapshot | None = snapshot
        self.tls_1_3_cap = ClientHelloCap(self.context, self._tls12_only, active=_any_tls12_only(snapshot))
        # A certificate for handshakes without (usable) SNI, so that the visitor at least gets a page.
        self._fallback_name = FALLBACK_NAME
        self._install(self.context, FALLBACK_NAME, self._snapshots())
        #: server name as the visitor sent it -> (the hostname's context, its zone's min_tls_version when it
        #: is above the listener's 1.2, else None), for the snapshot ``_capped_for`` and until the next
        #: :meth:`tick`: a returning hostname costs the SNI callback one dict look-up (issue 11).
        self._answers: dict[str, tuple[ssl.SSLContext, str | None]] = {}

    def _edge_ca(self, snapshot: Snapshot) -> tuple[bytes, str, Issued]:
        pki = snapshot.pki
        known = self._ca
        if known is None or (known[0] is not pki.edge_ca_cert_pem and known[0] != pki.edge_ca_cert_pem):
            pem = pki.edge_ca_cert_pem
            ca = Issued(load_certificates(pem)[0], load_private_key(pki.edge_ca_key_pem))
            known = self._ca = (pem, hashlib.sha256(pem).hexdigest()[:16], ca)
        return known

    def _install(self, ctx: ssl.SSLContext, host: str, snapshot: Snapshot) -> datetime:
        ca = self._edge_ca(snapshot)[2]
        leaf = issue_leaf(ca, host, now=self._clock(), days=EDGE_CERT_DAYS, client=False, server=True, sans=[host])
        load_chain_from_memory(ctx, (leaf.cert_pem + ca.cert_pem).encode(), leaf.key_pem)
        return leaf.cert.not_valid_after_utc

    def _context_for(self, host: str, snapshot: Snapshot, http2: bool = True) -> ssl.SSLContext:
        now = self._clock()
        uploaded = snapshot.edge_cert_for(host, now)
        # An uploaded certificate replaces the edge CA's; keyed by fingerprint so a replaced upload is re-read.
        # ALPN follows the zone's http2 setting: OpenSSL selects the protocol after the SNI callback, from the
        # context the connection was switched to.
        key = (host, uploaded.fingerprint if uploaded is not None else self._edge_ca(snapshot)[1], http2)
        hit = self._cache.get(key)
        if hit is not None and now < hit[1]:
            return hit[0]
        ctx = _server_context(http2)
        if uploaded is not None:
            load_chain_from_memory(ctx, uploaded.chain_pem, uploaded.key_pem)
            not_after = uploaded.not_after
        else:
            not_after = self._install(ctx, host, snapshot)
        if len(self._cache) >= MAX_CACHED:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (ctx, not_after - _RENEW_BEFORE)
        return ctx

    def _tls12_only(self, host: str) -> bool:
        """Whether ``host`` (a ClientHello's server name) belongs to a zone with ``tls_1_3`` off."""
        route = self._snapshots().route_for(host)
        return route is not None and not route.tls_1_3

    def _follow(self, snapshot: Snapshot) -> None:
        """A new snapshot: set the ClientHello callback if some route turned TLS 1.3 off, clear it if none
        does. Seen at the first SNI callback under the snapshot, so the handshake that notices a change
        is not yet capped by it (one connection, as if it had arrived just before the change)."""
        self._capped_for = snapshot
        self._answers.clear()
        self.tls_1_3_cap.enable(_any_tls12_only(snapshot))

    def tick(self) -> None:
        """Once a second (the edge's housekeeping): install the ticket key of the current period, and
        forget the remembered answers, so that what follows the clock (a hostname context renewed a day
        before its certificate expires, an uploaded certificate's validity) is seen within a second."""
        self.tickets.rotate()
        self._answers.clear()

    def _on_sni(self, ssl_obj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        # Runs inside every handshake, between the crypto: the ticket key is rotated by tick(), and a
        # hostname seen since the last tick is answered from _answers (no route look-up, clock read or
        # context cache key). ``ssl_obj`` is the connection's ssl.SSLObject; its version and context are
        # read and set on the C object under it (tls_object), without ssl.py's forwarding frames.
        snapshot = self._snapshots()
        if snapshot is not self._capped_for:
            self._follow(snapshot)
        if not server_name:
            return None
        answer = self._answers.get(server_name)
        if answer is None:
            host = server_name.rstrip(".").lower()
            route = snapshot.route_for(host)
            if route is None:
                return None  # fallback certificate; the request gets the 1001 page
            try:
                ctx = self._context_for(host, snapshot, route.http2)
            except (ValueError, ssl.SSLError, OSError):
                return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
            # Unknown names are not remembered: a visitor sending random names cannot grow the table.
            if len(self._answers) >= MAX_CACHED:
                self._answers.clear()
            minimum = route.min_tls_version if route.min_tls_version > "1.2" else None  # the listener's is 1.2
            answer = self._answers[server_name] = (ctx, minimum)
        tls = tls_object(ssl_obj)
        if answer[1] is not None:
            negotiated = _VERSIONS.get(tls.version() or "")
            if negotiated is not None and negotiated < answer[1]:
                return ssl.ALERT_DESCRIPTION_PROTOCOL_VERSION
        tls.context = answer[0]
        return None
