"""Custom edge certificates: uploaded through the API, served to visitors by SNI instead of the edge CA's."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki

V4 = "/client/v4"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = start_serve(tmp_path_factory.mktemp("edgecerts") / "data", extra_args=["--access-log", "off"])
    yield proc
    proc.stop()


def served_cert_issuer(served: ServeProcess, host: str) -> str:
    openssl = require_executable("openssl")
    out = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{served.https_port}", "-servername", host],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    return next((line for line in out.splitlines() if line.strip().startswith("i:")), "")


def test_upload_serve_replace_delete(served: ServeProcess) -> None:
    h = {"Authorization": f"Bearer {served.token}"}
    api = served.api_url + V4
    zone = httpx.post(f"{api}/zones", json={"name": "shop.test"}, headers=h).json()["result"]["id"]
    httpx.post(
        f"{api}/zones/{zone}/dns_records",
        headers=h,
        json={"type": "A", "name": "www", "content": "127.0.0.1", "proxied": True},
    )
    pki = UploadPki.create("Shop Public CA")
    server = pki.server("www.shop.test", sans=("www.shop.test", "*.shop.test"))
    time.sleep(0.6)
    assert "originlock edge CA" in served_cert_issuer(served, "www.shop.test")

    r = httpx.post(
        f"{api}/zones/{zone}/custom_certificates",
        headers=h,
        json={"certificate": server.cert_pem, "private_key": server.key_pem.decode(), "bundle_method": "force"},
    )
    assert r.status_code == 200, r.text
    cert = r.json()["result"]
    assert cert["hosts"] == ["www.shop.test", "*.shop.test"] and cert["status"] == "active"
    assert "private_key" not in r.text and "PRIVATE" not in r.text
    deadline = time.monotonic() + 3
    while "Shop Public CA" not in served_cert_issuer(served, "www.shop.test") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Shop Public CA" in served_cert_issuer(served, "www.shop.test")

    listed = httpx.get(f"{api}/zones/{zone}/custom_certificates", headers=h).json()["result"]
    assert [c["id"] for c in listed] == [cert["id"]]
    r = httpx.patch(f"{api}/zones/{zone}/custom_certificates/{cert['id']}", headers=h, json={"bundle_method": "nope"})
    assert r.status_code == 400
    r = httpx.post(
        f"{api}/zones/{zone}/custom_certificates",
        headers=h,
        json={"certificate": pki.ca.cert_pem, "private_key": pki.ca.key_pem.decode()},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["message"] == "missing leaf certificate"

    assert httpx.delete(f"{api}/zones/{zone}/custom_certificates/{cert['id']}", headers=h).status_code == 200
    deadline = time.monotonic() + 3
    while "originlock edge CA" not in served_cert_issuer(served, "www.shop.test") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "originlock edge CA" in served_cert_issuer(served, "www.shop.test")
