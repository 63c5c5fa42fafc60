"""Issuing CAs and leaves with ``cryptography``'s immutable builders.

Pure: the clock and key choice are parameters. Used for the deployment's own CAs (origin-pull,
edge, origin), for on-demand edge certificates, by ``originlock certs issue-*`` and by tests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from originlock.tls.certs import PrivateKey, private_key_pem

__all__ = ["Issued", "KeyKind", "issue_ca", "issue_leaf", "new_key"]

KeyKind = Literal["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"]

#: Backdate notBefore so that a peer whose clock is slightly behind still accepts a fresh certificate.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, both as PEM. ``key_pem`` must never be logged or written in clear."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> bytes:
        return private_key_pem(self.key)

    def __repr__(self) -> str:
        return f"Issued(subject={self.cert.subject.rfc4514_string()!r}, serial={self.cert.serial_number})"


def new_key(kind: KeyKind = "ecdsa-p256") -> PrivateKey:
    """A fresh private key. ECDSA P-256 by default: ~30x cheaper to sign with than RSA-2048 (performance.md §4.1)."""
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    bits = int(kind.split("-")[1])
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(common_name: str, organization: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _hash_for(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return hashes.SHA256()
    return None  # Ed25519 signs without a separate hash


def issue_ca(
    common_name: str,
    *,
    now: datetime,
    days: int = 3650,
    organization: str | None = "originlock",
    key: PrivateKey | None = None,
    parent: Issued | None = None,
    path_length: int | None = 1,
) -> Issued:
    """A CA certificate: self-signed root, or an intermediate when ``parent`` is given."""
    key = key or new_key()
    subject = _name(common_name, organization)
    issuer_name = parent.cert.subject if parent else subject
    signing_key = parent.key if parent else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if parent:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False
        )
    return Issued(builder.sign(signing_key, _hash_for(signing_key)), key)


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(general)


def issue_leaf(
    ca: Issued,
    common_name: str,
    *,
    now: datetime,
    days: int = 730,
    client: bool = True,
    server: bool = False,
    sans: Sequence[str] = (),
    organization: str | None = None,
    key: PrivateKey | None = None,
    not_before: datetime | None = None,
) -> Issued:
    """A leaf (``CA:FALSE``) and its new key, signed by ``ca``, for TLS client and/or server authentication.

    ``days`` may be negative together with ``not_before`` to make an already-expired certificate (tests).
    """
    key = key or new_key()
    cert = certify(
        ca,
        common_name,
        key.public_key(),
        now=now,
        days=days,
        client=client,
        server=server,
        sans=sans,
        organization=organization,
        not_before=not_before,
    )
    return Issued(cert, key)


def certify(
    ca: Issued,
    common_name: str,
    public_key: CertificatePublicKeyTypes,
    *,
    now: datetime,
    days: int = 730,
    client: bool = True,
    server: bool = False,
    sans: Sequence[str] = (),
    organization: str | None = None,
    not_before: datetime | None = None,
) -> x509.Certificate:
    """Sign a leaf for someone else's key (a CSR's): the private key never comes near us."""
    usages = []
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    start = not_before if not_before is not None else now - CLOCK_SKEW
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organization))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    names = list(sans) or ([common_name] if server else [])
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return builder.sign(ca.key, _hash_for(ca.key))
