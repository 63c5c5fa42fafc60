"""Algorithm policy: what FIPS 140-3 approved algorithms allow, as a verdict with reasons.

This is an algorithm policy, not a validated cryptographic module: it says whether a certificate
uses only FIPS-approved algorithms and sizes (NIST SP 800-131A Rev. 2, FIPS 186-5).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

__all__ = ["FipsVerdict", "fips_verdict"]

FIPS_CURVES = ("secp256r1", "secp384r1", "secp521r1")
FIPS_HASHES = ("sha224", "sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512")


@dataclass(frozen=True)
class FipsVerdict:
    approved: bool
    reasons: tuple[str, ...]


def fips_verdict(cert: x509.Certificate) -> FipsVerdict:
    reasons: list[str] = []
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            reasons.append(f"RSA key of {key.key_size} bits (FIPS needs at least 2048)")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in FIPS_CURVES:
            reasons.append(f"curve {key.curve.name} is not a NIST curve")
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        reasons.append("EdDSA keys are not accepted by this FIPS profile")
    else:
        reasons.append(f"key type {type(key).__name__} is not FIPS-approved")
    hash_alg = cert.signature_hash_algorithm
    if hash_alg is not None and hash_alg.name not in FIPS_HASHES:
        reasons.append(f"signature hash {hash_alg.name.upper()} is not FIPS-approved")
    return FipsVerdict(not reasons, tuple(reasons))
