"""Certificate and key value objects: parse, describe and validate PEM input.

Pure: no I/O and no clock (callers pass ``now``). Every failure is a :class:`CertificateError`
whose message is safe to show a user: it never contains key material.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = [
    "CertInfo",
    "CertificateError",
    "ClientUpload",
    "describe",
    "load_certificates",
    "load_private_key",
    "private_key_pem",
    "spki_sha256",
    "validate_client_upload",
]

# An explicit alias: where cryptography is not installed (pip's isolated build environment, in which mypyc
# type-checks the hot path's imports) its classes are Any, and an implicit alias of Any would be a variable.
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

#: RSA keys below this size are refused: NIST SP 800-131A disallows them since 2014.
MIN_RSA_BITS = 2048
#: Curves accepted for ECDSA keys (NIST curves; what Cloudflare's CSR tooling offers is a subset).
ALLOWED_CURVES = ("secp256r1", "secp384r1", "secp521r1")
#: Signature hashes refused on upload: collision attacks are practical (SHA-1 SHAttered, MD5).
WEAK_HASHES = ("sha1", "md5")


class CertificateError(ValueError):
    """A certificate or key was rejected; the message says why and is safe to show."""


@dataclass(frozen=True)
class CertInfo:
    """What the API records about a certificate (spec §3.2)."""

    subject: str
    issuer: str
    #: Cloudflare's style, e.g. ``SHA256WithRSA`` or ``ECDSAWithSHA256``.
    signature: str
    #: Decimal, as Cloudflare returns it.
    serial_number: str
    not_before: datetime
    expires_on: datetime
    #: ``rsa-2048``, ``ecdsa-p256``, ``ed25519``...
    key_type: str
    #: Lower-case hex SHA-256 of the DER certificate: the certificate's identity and version.
    fingerprint_sha256: str
    is_ca: bool


@dataclass(frozen=True)
class ClientUpload:
    """An uploaded AOP client certificate after validation."""

    info: CertInfo
    #: Leaf first, then any intermediates, normalised PEM.
    chain_pem: str
    #: Leaf alone, normalised PEM (what the API echoes as ``certificate``).
    leaf_pem: str
    #: Private key as unencrypted PKCS#8 PEM; only ever kept in memory or sealed.
    key_pem: bytes

    def __repr__(self) -> str:  # never show the key
        return f"ClientUpload(serial={self.info.serial_number}, expires_on={self.info.expires_on:%Y-%m-%d})"


def _to_bytes(pem: str | bytes) -> bytes:
    data = pem.encode() if isinstance(pem, str) else pem
    # PEM pasted through JSON sometimes arrives with literal "\n" sequences (docs use perl to escape).
    if b"\\n" in data and b"\n" not in data.strip():
        data = data.replace(b"\\n", b"\n")
    return data.strip() + b"\n"


def load_certificates(pem: str | bytes) -> list[x509.Certificate]:
    """Parse one or more PEM certificates, in order.

    Raises:
        CertificateError: no certificate, or one that does not parse.
    """
    data = _to_bytes(pem)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise CertificateError("certificate is not a PEM certificate (no BEGIN CERTIFICATE block)")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError("certificate PEM could not be parsed") from exc
    if not certs:
        raise CertificateError("certificate is not a PEM certificate (no BEGIN CERTIFICATE block)")
    return certs


def load_private_key(pem: str | bytes) -> PrivateKey:
    """Parse an unencrypted private key (PKCS#1, PKCS#8 or SEC1 PEM).

    Raises:
        CertificateError: encrypted, unparsable or of an unsupported type. The message never echoes the input.
    """
    data = _to_bytes(pem)
    if b"ENCRYPTED" in data.split(b"\n", 1)[0]:
        raise CertificateError("private_key is encrypted; upload it without a passphrase")
    if b"PRIVATE KEY-----" not in data:
        raise CertificateError("private_key is not a PEM private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # `from None`: the parser's own message is not ours to vouch for; keep the chain free of input.
        raise CertificateError("private_key could not be parsed") from None
    # Anything else (DSA, Ed448, X25519...) is refused here; naming DSA's class would warn on every start with
    # cryptography 46+, where DSA is deprecated.
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise CertificateError("private_key type is not supported; use RSA (2048+) or ECDSA P-256/P-384")
    return key


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: the one form we keep keys in (sealed at rest)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _key_type(public_key: object) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa-{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}.get(
            public_key.curve.name, f"ecdsa-{public_key.curve.name}"
        )
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return "unknown"


def _signature_name(cert: x509.Certificate) -> str:
    oid_name = cert.signature_algorithm_oid._name  # e.g. sha256WithRSAEncryption, ecdsa-with-SHA256
    hash_alg = cert.signature_hash_algorithm
    hash_name = hash_alg.name.upper().replace("-", "") if hash_alg is not None else ""
    if "RSA" in oid_name or "rsa" in oid_name:
        return f"{hash_name}WithRSA" if "PSS" not in oid_name.upper() else f"{hash_name}WithRSAPSS"
    if "ecdsa" in oid_name.lower():
        return f"ECDSAWith{hash_name}"
    if "ed25519" in oid_name.lower():
        return "Ed25519"
    return oid_name


def spki_sha256(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the SubjectPublicKeyInfo: the pin the origin kit checks."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        # A v1 self-signed certificate acts as a root; anything else without the extension is a leaf.
        return cert.issuer == cert.subject
    return bc.ca


def describe(cert: x509.Certificate) -> CertInfo:
    """Summarise a certificate the way the API reports it."""
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        signature=_signature_name(cert),
        serial_number=str(cert.serial_number),
        not_before=cert.not_valid_before_utc,
        expires_on=cert.not_valid_after_utc,
        key_type=_key_type(cert.public_key()),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        is_ca=_is_ca(cert),
    )


def _public_der(key: object) -> bytes:
    pub = key.public_key()  # type: ignore[attr-defined]
    der: bytes = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _check_algorithms(cert: x509.Certificate) -> None:
    public_key = cert.public_key()
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < MIN_RSA_BITS:
        raise CertificateError(f"RSA key of {public_key.key_size} bits is too small; use at least {MIN_RSA_BITS}")
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name not in ALLOWED_CURVES:
        raise CertificateError(f"elliptic curve {public_key.curve.name} is not supported; use P-256 or P-384")
    hash_alg = cert.signature_hash_algorithm
    if hash_alg is not None and hash_alg.name in WEAK_HASHES:
        raise CertificateError(f"certificate is signed with {hash_alg.name.upper()}, which is not accepted")


def validate_client_upload(certificate: str, private_key: str, now: datetime) -> ClientUpload:
    """Validate an AOP client certificate upload (spec §3.3).

    The first certificate must be a leaf (``CA:FALSE``), unexpired, using accepted algorithms,
    and matching ``private_key``. Further certificates are kept as the chain sent to origins.

    Raises:
        CertificateError: with Cloudflare's wording where one is documented (``missing leaf certificate``).
    """
    certs = load_certificates(certificate)
    leaf = certs[0]
    if _is_ca(leaf):
        raise CertificateError("missing leaf certificate")
    key = load_private_key(private_key)
    if _public_der(key) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise CertificateError("private key does not match certificate")
    _check_algorithms(leaf)
    info = describe(leaf)
    if info.expires_on <= now.astimezone(UTC):
        raise CertificateError(f"certificate expired on {info.expires_on:%Y-%m-%dT%H:%M:%SZ}")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if (
        eku is not None
        and ExtendedKeyUsageOID.CLIENT_AUTH not in eku
        and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    ):
        raise CertificateError("certificate's extended key usage does not allow TLS client authentication")
    pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in certs]
    return ClientUpload(info=info, chain_pem="".join(pems), leaf_pem=pems[0], key_pem=private_key_pem(key))
