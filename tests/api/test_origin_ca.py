"""Origin CA (`/certificates`): issue from a CSR, list per zone, revoke; the key never reaches the API."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

V4 = "/client/v4"


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, cn: str = "origin.example.test") -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_issue_list_revoke(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("example.test")
    other = api.zone("other.test")
    key = ec.generate_private_key(ec.SECP256R1())
    body = {
        "csr": _csr(key),
        "hostnames": ["example.test", "*.example.test"],
        "request_type": "origin-ecc",
        "requested_validity": 90,
    }
    r = api.client.post(f"{V4}/certificates", json=body, headers=api.admin)
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    assert cert.public_key() == key.public_key()
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sans == ["example.test", "*.example.test"]
    ca = x509.load_pem_x509_certificate(api.client.get("/ca/origin.pem").content)
    cert.verify_directly_issued_by(ca)
    assert result["hostnames"] == ["example.test", "*.example.test"] and result["requested_validity"] == 90

    listed = api.client.get(f"{V4}/certificates", params={"zone_id": zone}, headers=api.admin).json()
    assert [c["id"] for c in listed["result"]] == [result["id"]]
    assert (
        api.client.get(f"{V4}/certificates", params={"zone_id": zone, "page": 2}, headers=api.admin).json()["result"]
        == []
    )
    assert api.client.get(f"{V4}/certificates", params={"zone_id": other}, headers=api.admin).json()["result"] == []
    revoked = api.client.delete(f"{V4}/certificates/{result['id']}", headers=api.admin).json()["result"]
    assert revoked["id"] == result["id"] and revoked["revoked_at"]
    assert api.client.get(f"{V4}/certificates", params={"zone_id": zone}, headers=api.admin).json()["result"] == []
    got = api.client.get(f"{V4}/certificates/{result['id']}", headers=api.admin).json()["result"]
    assert got["revoked_at"] == revoked["revoked_at"]


def test_bad_requests(api) -> None:  # type: ignore[no-untyped-def]
    ec_csr = _csr(ec.generate_private_key(ec.SECP256R1()))
    cases = [
        ({"csr": "garbage", "hostnames": ["a.test"], "request_type": "origin-ecc"}, "not a PEM"),
        ({"csr": ec_csr, "hostnames": ["a.test"], "request_type": "origin-rsa"}, "RSA key"),
        ({"csr": ec_csr, "hostnames": ["a.test"], "request_type": "origin-ecc", "requested_validity": 12}, "5475"),
        ({"csr": ec_csr, "hostnames": ["not a host"], "request_type": "origin-ecc"}, "not a valid hostname"),
        ({"csr": ec_csr, "hostnames": [], "request_type": "origin-ecc"}, "hostnames"),
        (
            {"csr": _csr(rsa.generate_private_key(65537, 1024)), "hostnames": ["a.test"], "request_type": "origin-rsa"},
            "2048",
        ),
    ]
    for body, words in cases:
        r = api.client.post(f"{V4}/certificates", json=body, headers=api.admin)
        assert r.status_code == 400, (body, r.text)
        assert words in r.json()["errors"][0]["message"], r.text
    assert api.client.get(f"{V4}/certificates/123", headers=api.admin).status_code == 404


def test_origin_ca_through_the_sdk(api) -> None:  # type: ignore[no-untyped-def]
    from originlock.testing.sdk_client import sdk

    zone = api.zone("sdk-origin.test")
    token = api.admin["Authorization"].split()[1]
    cf = sdk(api.client, token)
    key = ec.generate_private_key(ec.SECP256R1())
    created = cf.origin_ca_certificates.create(
        csr=_csr(key, "sdk-origin.test"),
        hostnames=["sdk-origin.test"],
        request_type="origin-ecc",
        requested_validity=30,
    )
    assert created is not None and created.id and created.certificate
    assert [c.id for c in cf.origin_ca_certificates.list(zone_id=zone)] == [created.id]
    got = cf.origin_ca_certificates.get(created.id)
    assert got is not None and got.hostnames == ["sdk-origin.test"]
    revoked = cf.origin_ca_certificates.delete(created.id)
    assert revoked is not None and revoked.id == created.id and revoked.revoked_at is not None
