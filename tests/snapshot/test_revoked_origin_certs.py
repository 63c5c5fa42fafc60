"""Revoked Origin CA certificates reach the snapshot: fingerprint -> id, and one id for the whole set."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from originlock.server.bootstrap import bootstrap
from originlock.snapshot.model import DeploymentPki
from originlock.store import origin_ca
from originlock.store.compile import compile_snapshot


def _csr(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _fingerprint(pem: str) -> str:
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def test_compile_lists_revoked_unexpired_origin_certificates(store_url: str, tmp_path: Path) -> None:
    d = bootstrap(tmp_path / "data", store_url)
    store = d.store
    now = datetime.now(UTC)
    with store.write() as conn:
        rows = [
            origin_ca.create_origin_cert(
                conn,
                store.sealer,
                csr_pem=_csr(f"{name}.example.test"),
                hostnames=[f"{name}.example.test"],
                request_type="origin-ecc",
                requested_validity=validity,
                now=now,
            )
            for name, validity in (("kept", 365), ("revoked", 365), ("short", 7))
        ]
    kept, revoked, short = rows
    first = compile_snapshot(store, now)
    assert dict(first.pki.revoked_origin_certs) == {}
    assert first.pki.revocation_id == ""

    with store.write() as conn:
        origin_ca.revoke(conn, revoked.id)
        origin_ca.revoke(conn, short.id)
    second = compile_snapshot(store, now)
    assert dict(second.pki.revoked_origin_certs) == {
        _fingerprint(revoked.certificate): revoked.id,
        _fingerprint(short.certificate): short.id,
    }
    assert _fingerprint(kept.certificate) not in second.pki.revoked_origin_certs
    assert second.pki.revocation_id and second.pki.revocation_id != first.pki.revocation_id

    # Once expired the handshake refuses it anyway: it leaves the set (and the set's id changes with it).
    later = compile_snapshot(store, now + timedelta(days=8))
    assert dict(later.pki.revoked_origin_certs) == {_fingerprint(revoked.certificate): revoked.id}
    assert later.pki.revocation_id not in ("", second.pki.revocation_id)
    store.close()


def test_revocation_id_names_the_set() -> None:
    def pki(revoked: dict[str, str]) -> DeploymentPki:
        return DeploymentPki(edge_ca_cert_pem=b"ca", edge_ca_key_pem=b"key", revoked_origin_certs=revoked)

    assert pki({}).revocation_id == ""
    ab = pki({"aa": "1", "bb": "2"})
    assert ab.revocation_id == pki({"bb": "2", "aa": "1"}).revocation_id  # order does not matter
    assert ab.revocation_id != pki({"aa": "1"}).revocation_id
    assert len(ab.revocation_id) == 16
    # The snapshot's copy is read-only: the edge shares it between requests.
    revoked = {"aa": "1"}
    frozen = pki(revoked)
    revoked["cc"] = "3"
    assert dict(frozen.revoked_origin_certs) == {"aa": "1"}
