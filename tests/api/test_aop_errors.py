"""Every documented AOP error path, as raw HTTP, on both store backends."""

from __future__ import annotations

from datetime import timedelta

from originlock.testing.upload_pki import UploadPki, leaf_pems
from originlock.tls.issue import issue_ca, issue_leaf, new_key

BASE = "/client/v4/zones/{}/origin_tls_client_auth"


def _errors(r) -> list[int]:  # type: ignore[no-untyped-def]
    body = r.json()
    assert body["success"] is False and body["result"] is None
    return [e["code"] for e in body["errors"]]


def test_zone_cert_upload_returns_fields_and_never_the_key(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    leaf = pki.client("app.example.test")
    cert, key = leaf_pems(leaf)
    r = api.client.post(BASE.format(zone), json={"certificate": cert, "private_key": key}, headers=api.admin)
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert set(result) == {
        "id",
        "certificate",
        "expires_on",
        "issuer",
        "signature",
        "serial_number",
        "status",
        "uploaded_on",
    }
    assert result["status"] == "active"
    assert result["serial_number"] == str(leaf.cert.serial_number)
    assert result["signature"] == "ECDSAWithSHA256"
    assert "test private CA" in result["issuer"]
    assert result["expires_on"].endswith("Z")
    assert "PRIVATE KEY" not in r.text


def test_bad_pem_is_400_with_message(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    _, key = leaf_pems(pki.client("a.example.test"))
    r = api.client.post(BASE.format(zone), json={"certificate": "not a pem", "private_key": key}, headers=api.admin)
    assert r.status_code == 400
    assert "PEM" in r.json()["errors"][0]["message"]
    assert "PRIVATE KEY" not in r.text


def test_ca_instead_of_leaf_is_missing_leaf_certificate(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    r = api.client.post(
        BASE.format(zone) + "/hostnames/certificates",
        json={"certificate": pki.ca.cert_pem, "private_key": pki.ca.key_pem.decode()},
        headers=api.admin,
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["message"] == "missing leaf certificate"


def test_key_mismatch_and_expired_and_weak(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    cert, _ = leaf_pems(pki.client("a.example.test"))
    _, other_key = leaf_pems(pki.client("b.example.test"))
    r = api.client.post(BASE.format(zone), json={"certificate": cert, "private_key": other_key}, headers=api.admin)
    assert r.status_code == 400 and "does not match" in r.json()["errors"][0]["message"]
    assert other_key.splitlines()[1] not in r.text

    expired_cert, expired_key = leaf_pems(pki.expired_client("old.example.test"))
    r = api.client.post(
        BASE.format(zone), json={"certificate": expired_cert, "private_key": expired_key}, headers=api.admin
    )
    assert r.status_code == 400 and "expired" in r.json()["errors"][0]["message"]

    ca = issue_ca("weak", now=pki.now, key=new_key("rsa-2048"))
    weak = issue_leaf(
        ca,
        "weak.example.test",
        now=pki.now,
        key=__import__("cryptography.hazmat.primitives.asymmetric.rsa", fromlist=["x"]).generate_private_key(
            65537, 1024
        ),
    )
    r = api.client.post(
        BASE.format(zone),
        json=dict(zip(("certificate", "private_key"), leaf_pems(weak), strict=True)),
        headers=api.admin,
    )
    assert r.status_code == 400 and "too small" in r.json()["errors"][0]["message"]


def test_encrypted_key_is_refused_clearly(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    zone = api.zone()
    leaf = pki.client("enc.example.test")
    enc = leaf.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ).decode()
    r = api.client.post(BASE.format(zone), json={"certificate": leaf.cert_pem, "private_key": enc}, headers=api.admin)
    assert r.status_code == 400 and "encrypted" in r.json()["errors"][0]["message"]


def test_missing_fields_and_bad_json(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    r = api.client.post(BASE.format(zone), json={"certificate": "x"}, headers=api.admin)
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"]["pointer"] == "/private_key"
    r = api.client.post(BASE.format(zone), content=b"{not json", headers=api.admin)
    assert r.status_code == 400 and "JSON" in r.json()["errors"][0]["message"]


def test_association_with_zone_cert_id_is_1415(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    cert, key = leaf_pems(pki.client("zone.example.test"))
    zone_cert = api.client.post(
        BASE.format(zone), json={"certificate": cert, "private_key": key}, headers=api.admin
    ).json()
    body = {"config": [{"hostname": "app.example.test", "cert_id": zone_cert["result"]["id"], "enabled": True}]}
    r = api.client.put(BASE.format(zone) + "/hostnames", json=body, headers=api.admin)
    assert r.status_code == 400 and _errors(r) == [1415]
    assert r.json()["errors"][0]["message"] == (
        "Certificate ID in request is either invalid or the certificate has been deleted"
    )
    # Nothing half-written: the hostname has no association afterwards.
    assert api.client.get(BASE.format(zone) + "/hostnames/app.example.test", headers=api.admin).status_code == 404


def test_associations_are_all_or_nothing(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    cert, key = leaf_pems(pki.client("app.example.test"))
    cid = api.client.post(
        BASE.format(zone) + "/hostnames/certificates", json={"certificate": cert, "private_key": key}, headers=api.admin
    ).json()["result"]["id"]
    body = {
        "config": [
            {"hostname": "good.example.test", "cert_id": cid, "enabled": True},
            {"hostname": "bad.example.test", "cert_id": "00000000-0000-0000-0000-000000000000", "enabled": True},
        ]
    }
    assert api.client.put(BASE.format(zone) + "/hostnames", json=body, headers=api.admin).status_code == 400
    assert api.client.get(BASE.format(zone) + "/hostnames/good.example.test", headers=api.admin).status_code == 404


def test_hostname_outside_zone_and_enabled_required(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    cert, key = leaf_pems(pki.client("app.example.test"))
    cid = api.client.post(
        BASE.format(zone) + "/hostnames/certificates", json={"certificate": cert, "private_key": key}, headers=api.admin
    ).json()["result"]["id"]
    r = api.client.put(
        BASE.format(zone) + "/hostnames",
        json={"config": [{"hostname": "x.other.test", "cert_id": cid, "enabled": True}]},
        headers=api.admin,
    )
    assert r.status_code == 400 and "not in zone" in r.json()["errors"][0]["message"]
    r = api.client.put(
        BASE.format(zone) + "/hostnames",
        json={"config": [{"hostname": "a.example.test", "cert_id": cid}]},
        headers=api.admin,
    )
    assert r.status_code == 400 and r.json()["errors"][0]["source"]["pointer"] == "/config/0/enabled"


def test_hostname_cert_limit_and_delete_rules(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    ids = []
    for i in range(10):
        cert, key = leaf_pems(pki.client(f"h{i}.example.test"))
        r = api.client.post(
            BASE.format(zone) + "/hostnames/certificates",
            json={"certificate": cert, "private_key": key},
            headers=api.admin,
        )
        assert r.status_code == 200, r.text
        ids.append(r.json()["result"]["id"])
    cert, key = leaf_pems(pki.client("h10.example.test"))
    r = api.client.post(
        BASE.format(zone) + "/hostnames/certificates", json={"certificate": cert, "private_key": key}, headers=api.admin
    )
    assert r.status_code == 400 and "10 hostname certificates" in r.json()["errors"][0]["message"]

    put = api.client.put(
        BASE.format(zone) + "/hostnames",
        json={"config": [{"hostname": "app.example.test", "cert_id": ids[0], "enabled": False}]},
        headers=api.admin,
    )
    assert put.status_code == 200
    # enabled:false is still an association: deletion must wait until it is voided with null.
    r = api.client.delete(BASE.format(zone) + f"/hostnames/certificates/{ids[0]}", headers=api.admin)
    assert r.status_code == 400 and "invalidate the association first" in r.json()["errors"][0]["message"]
    api.client.put(
        BASE.format(zone) + "/hostnames",
        json={"config": [{"hostname": "app.example.test", "cert_id": ids[0], "enabled": None}]},
        headers=api.admin,
    )
    r = api.client.delete(BASE.format(zone) + f"/hostnames/certificates/{ids[0]}", headers=api.admin)
    assert r.status_code == 200
    assert api.client.get(BASE.format(zone) + f"/hostnames/certificates/{ids[0]}", headers=api.admin).status_code == 404


def test_association_limit_per_cert(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    cert, key = leaf_pems(pki.client("many.example.test"))
    cid = api.client.post(
        BASE.format(zone) + "/hostnames/certificates", json={"certificate": cert, "private_key": key}, headers=api.admin
    ).json()["result"]["id"]
    config = [{"hostname": f"h{i}.example.test", "cert_id": cid, "enabled": True} for i in range(100)]
    assert (
        api.client.put(BASE.format(zone) + "/hostnames", json={"config": config}, headers=api.admin).status_code == 200
    )
    extra = {"config": [{"hostname": "h100.example.test", "cert_id": cid, "enabled": True}]}
    r = api.client.put(BASE.format(zone) + "/hostnames", json=extra, headers=api.admin)
    assert r.status_code == 400 and "100 associations" in r.json()["errors"][0]["message"]


def test_unknown_zone_and_malformed_zone_id(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.get(BASE.format("0" * 32), headers=api.admin)
    assert r.status_code == 404
    r = api.client.get(BASE.format("nope"), headers=api.admin)
    assert r.status_code == 400 and _errors(r) == [7003]


def test_expiry_threshold_uses_injected_clock(pki: UploadPki) -> None:
    from originlock.tls.certs import CertificateError, validate_client_upload

    leaf = pki.client("soon.example.test", days=2)
    cert, key = leaf_pems(leaf)
    assert validate_client_upload(cert, key, pki.now).info.serial_number == str(leaf.cert.serial_number)
    try:
        validate_client_upload(cert, key, pki.now + timedelta(days=3))
    except CertificateError as exc:
        assert "expired" in str(exc)
    else:
        raise AssertionError("a certificate past its notAfter was accepted")
