"""Write the CA bundle an origin trusts for client certificates.

Only public certificates are written here (no keys), but the file decides who may reach the origin, so
it is replaced atomically (write then rename) and made read-only to others' writes (0644).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from originlock.tls.certs import CertificateError, describe, load_certificates

__all__ = ["bundle_file_name", "normalise_bundle", "write_ca_bundle"]


def normalise_bundle(pem: str) -> str:
    """Parse, keep only CA certificates, de-duplicate, and re-emit PEM with a comment per certificate.

    Raises:
        CertificateError: nothing parsable, or no CA certificate in it.
    """
    seen: set[bytes] = set()
    parts: list[str] = []
    for cert in load_certificates(pem):
        info = describe(cert)
        der = cert.public_bytes(serialization.Encoding.DER)
        if not info.is_ca or der in seen:
            continue
        seen.add(der)
        parts.append(
            f"# subject: {info.subject}\n# expires: {info.expires_on:%Y-%m-%d}  sha256: {info.fingerprint_sha256}\n"
            + cert.public_bytes(serialization.Encoding.PEM).decode()
        )
    if not parts:
        raise CertificateError("the CA bundle contains no CA certificate")
    return "".join(parts)


def bundle_file_name(zone: str | None, hostname: str | None) -> str:
    scope = hostname or zone or "originlock"
    return f"{scope}-edge-ca.pem"


def write_ca_bundle(pem: str, directory: str | os.PathLike[str], file_name: str) -> Path:
    """Write the normalised bundle to ``directory/file_name`` atomically; returns the absolute path."""
    target = Path(directory).resolve() / file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{file_name}.tmp")
    tmp.write_text(normalise_bundle(pem))
    tmp.chmod(0o644)
    os.replace(tmp, target)
    return target
