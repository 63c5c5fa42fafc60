"""Decide whether a client certificate is the edge's: chain to the expected CA, optionally pinned per hostname.

Pure: the clock is a parameter, no sockets. Chain building and policy use
``cryptography.x509.verification`` (``PolicyBuilder -> ClientVerifier``), the same RFC 5280 engine the
rest of originlock uses. Two adjustments to its Web-PKI defaults, both because edge *client*
certificates are not Web-PKI server certificates:

- the leaf may lack a SubjectAltName (Cloudflare's and our own AOP leaves identify a service, not a
  name; the Web-PKI client profile requires one);
- on ``cryptography`` < 45, which lacks ``extension_policies``, a minimal walk (issuer signature +
  validity at each step) is used instead.

Pinning closes the shared-certificate hole (spec §2.2): a CA shared by every zone proves only "came
through *an* edge"; pinning the SPKI of the certificate bound to *this* hostname proves "came through
the edge for this hostname". Pins are SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import verification as xv

from originlock.tls.certs import describe, load_certificates, spki_sha256

__all__ = ["EdgeTrust", "EdgeVerificationError", "VerifiedEdge", "load_der_or_pem", "verify_edge_cert"]


class EdgeVerificationError(Exception):
    """The peer is not the edge; ``reason`` is a short sentence safe to log and return to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedEdge:
    """A client certificate that passed: its subject, pin and the chain that was built."""

    subject: str
    spki_sha256: str
    fingerprint_sha256: str
    #: Whether a per-hostname pin was checked (False when the hostname has no pins configured).
    pinned: bool
    chain: tuple[x509.Certificate, ...] = field(repr=False)


def _normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):  # [v6]:port
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class EdgeTrust:
    """Who counts as the edge. Build once at startup; immutable afterwards.

    Attributes:
        anchors: the CA certificate(s) the edge's client certificates chain to.
        intermediates: extra intermediates to build chains with (servers on Python < 3.13 only see the leaf).
        pins: hostname -> accepted SPKI SHA-256 pins; ``*.example.com`` matches one label.
        require_pin: refuse hostnames that have no pins (multi-tenant origins that must pin everything).
    """

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    pins: Mapping[str, frozenset[str]] = field(default_factory=dict)
    require_pin: bool = False

    def __post_init__(self) -> None:
        if not self.anchors:
            raise ValueError("EdgeTrust needs at least one CA certificate")
        pins = {_normalise_host(h): frozenset(p.lower().replace(":", "") for p in v) for h, v in self.pins.items()}
        object.__setattr__(self, "pins", pins)

    @classmethod
    def from_pem(
        cls,
        ca_bundle_pem: str | bytes,
        *,
        pins: Mapping[str, Iterable[str]] | None = None,
        require_pin: bool = False,
    ) -> EdgeTrust:
        """CA certificates become anchors, any non-CA certificate in the bundle is ignored."""
        certs = load_certificates(ca_bundle_pem)
        anchors = tuple(c for c in certs if describe(c).is_ca)
        return cls(anchors=anchors, pins={h: frozenset(p) for h, p in (pins or {}).items()}, require_pin=require_pin)

    def pins_for(self, hostname: str | None) -> frozenset[str] | None:
        if not hostname:
            return None
        host = _normalise_host(hostname)
        if host in self.pins:
            return self.pins[host]
        parent = host.split(".", 1)[1] if "." in host else ""
        return self.pins.get(f"*.{parent}") if parent else None


def load_der_or_pem(data: bytes | str) -> x509.Certificate:
    """One certificate from DER bytes or PEM text."""
    if isinstance(data, bytes) and not data.lstrip().startswith(b"-----"):
        try:
            return x509.load_der_x509_certificate(data)
        except ValueError:
            raise EdgeVerificationError("client certificate could not be parsed") from None
    try:
        return load_certificates(data)[0]
    except ValueError:
        raise EdgeVerificationError("client certificate could not be parsed") from None


def _build_chain(
    trust: EdgeTrust, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], now: datetime
) -> tuple[x509.Certificate, ...]:
    pool = [*intermediates, *trust.intermediates]
    builder = xv.PolicyBuilder().store(xv.Store(list(trust.anchors))).time(now)
    if hasattr(builder, "extension_policies"):
        ee = xv.ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, xv.Criticality.AGNOSTIC, None
        )
        builder = builder.extension_policies(ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
        try:
            return tuple(builder.build_client_verifier().verify(leaf, pool).chain)
        except xv.VerificationError as exc:
            raise EdgeVerificationError(f"client certificate does not chain to the edge CA ({exc})") from None
    return _walk(trust, leaf, pool, now)  # pragma: no cover - cryptography < 45


def _walk(
    trust: EdgeTrust, leaf: x509.Certificate, pool: Sequence[x509.Certificate], now: datetime
) -> tuple[x509.Certificate, ...]:  # pragma: no cover - cryptography < 45
    chain = [leaf]
    current = leaf
    for _ in range(len(pool) + 1):
        if not current.not_valid_before_utc <= now <= current.not_valid_after_utc:
            raise EdgeVerificationError("a certificate in the client chain is expired or not yet valid")
        for anchor in trust.anchors:
            if anchor.subject == current.issuer and _signed_by(current, anchor):
                return (*chain, anchor)
        parent = next((c for c in pool if c.subject == current.issuer and _signed_by(current, c)), None)
        if parent is None:
            break
        chain.append(parent)
        current = parent
    raise EdgeVerificationError("client certificate does not chain to the edge CA")


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:  # pragma: no cover
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_edge_cert(
    trust: EdgeTrust,
    leaf: x509.Certificate | bytes | str,
    intermediates: Sequence[x509.Certificate] = (),
    *,
    hostname: str | None = None,
    now: datetime | None = None,
) -> VerifiedEdge:
    """Check ``leaf`` (+ ``intermediates``) against ``trust`` and, if ``hostname`` has pins, its SPKI.

    Raises:
        EdgeVerificationError: with a reason that never contains key material.
    """
    cert = leaf if isinstance(leaf, x509.Certificate) else load_der_or_pem(leaf)
    chain = _build_chain(trust, cert, intermediates, now or datetime.now(UTC))
    pin = spki_sha256(cert)
    expected = trust.pins_for(hostname)
    if expected is None and trust.require_pin:
        raise EdgeVerificationError(f"no certificate pin is configured for host {hostname!r}")
    if expected is not None and pin not in expected:
        raise EdgeVerificationError(f"client certificate is not the one bound to host {hostname!r}")
    info = describe(cert)
    return VerifiedEdge(
        subject=info.subject,
        spki_sha256=pin,
        fingerprint_sha256=info.fingerprint_sha256,
        pinned=expected is not None,
        chain=chain,
    )
