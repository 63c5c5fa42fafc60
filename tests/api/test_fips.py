"""FIPS profile in the control plane: uploads outside FIPS algorithms refused, the API says why about the shared
certificate, and a zone cannot switch FIPS on while it holds certificates the profile would refuse."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519

from originlock.testing.upload_pki import UploadPki, leaf_pems
from originlock.tls.issue import issue_leaf

V4 = "/client/v4"


def _ed25519_leaf(pki: UploadPki) -> tuple[str, str]:
    return leaf_pems(issue_leaf(pki.ca, "ed.example.test", now=pki.now, key=ed25519.Ed25519PrivateKey.generate()))


def test_fips_zone_refuses_non_fips_upload_and_explains_global(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone()
    base = f"{V4}/zones/{zone}"
    cert, key = _ed25519_leaf(pki)
    # Outside FIPS, Ed25519 is accepted...
    r = api.client.post(
        f"{base}/origin_tls_client_auth", json={"certificate": cert, "private_key": key}, headers=api.admin
    )
    assert r.status_code == 200
    ed_id = r.json()["result"]["id"]
    # ...and then blocks switching the zone to FIPS until it is gone.
    r = api.client.patch(f"{base}/settings/fips", json={"value": "on"}, headers=api.admin)
    assert r.status_code == 400 and r.json()["result"] is None
    assert "FIPS profile" in r.json()["errors"][0]["message"]
    assert api.client.get(f"{base}/settings/fips", headers=api.admin).json()["result"]["value"] == "off"
    assert ed_id in r.json()["errors"][0]["message"]
    api.client.delete(f"{base}/origin_tls_client_auth/{ed_id}", headers=api.admin)
    r = api.client.patch(f"{base}/settings/fips", json={"value": "on"}, headers=api.admin)
    assert r.status_code == 200, r.text

    r = api.client.post(
        f"{base}/origin_tls_client_auth/hostnames/certificates",
        json={"certificate": cert, "private_key": key},
        headers=api.admin,
    )
    assert r.status_code == 400 and "FIPS profile: EdDSA" in r.json()["errors"][0]["message"]
    ok_cert, ok_key = leaf_pems(pki.client("fips.example.test", key="ecdsa-p384"))
    r = api.client.post(
        f"{base}/origin_tls_client_auth", json={"certificate": ok_cert, "private_key": ok_key}, headers=api.admin
    )
    assert r.status_code == 200

    r = api.client.patch(f"{base}/settings/tls_client_auth", json={"value": "on"}, headers=api.admin)
    assert r.status_code == 200 and r.json()["result"]["value"] == "on"
    assert "never presents the shared global certificate" in r.json()["messages"][0]["message"]
    r = api.client.patch(f"{base}/settings/fips", json={"value": "off"}, headers=api.admin)
    r = api.client.patch(f"{base}/settings/tls_client_auth", json={"value": "on"}, headers=api.admin)
    assert r.json()["messages"] == []
