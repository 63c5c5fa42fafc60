"""Restarts keep everything; SIGKILL loses no committed write; no private key is ever visible in clear."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from originlock.testing.serve import start_serve
from originlock.testing.upload_pki import UploadPki, leaf_pems

V4 = "/client/v4"


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_restart_and_sigkill_keep_committed_writes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = request.getfixturevalue("pg_schema_factory")("ol_kill") if backend == "postgres" else None
    data = tmp_path / "data"
    first = start_serve(data, store)
    token = first.token
    zone = httpx.post(f"{first.api_url}{V4}/zones", json={"name": "kept.test"}, headers=_h(token)).json()["result"][
        "id"
    ]
    r = httpx.post(
        f"{first.api_url}{V4}/zones/{zone}/dns_records",
        headers=_h(token),
        json={"type": "A", "name": "app", "content": "10.0.0.1", "proxied": True},
    )
    assert r.status_code == 200
    # Killed with no chance to flush anything: both answered writes must be there afterwards.
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()

    second = start_serve(data, store)
    assert second.token == token
    assert "shown once" not in second.output()  # the admin token is printed on first start only
    records = httpx.get(f"{second.api_url}{V4}/zones/{zone}/dns_records", headers=_h(token)).json()["result"]
    assert [(x["name"], x["content"]) for x in records] == [("app.kept.test", "10.0.0.1")]
    httpx.patch(f"{second.api_url}{V4}/zones/{zone}/settings/ssl", json={"value": "strict"}, headers=_h(token))
    assert second.stop(signal.SIGTERM) == 0
    assert "originlock stopped" in second.output()

    third = start_serve(data, store)
    got = httpx.get(f"{third.api_url}{V4}/zones/{zone}/settings/ssl", headers=_h(token)).json()["result"]
    assert got["value"] == "strict"
    assert third.stop(signal.SIGINT) == 0


def test_admin_token_from_environment(tmp_path: Path) -> None:
    proc = start_serve(tmp_path / "data", env={"ORIGINLOCK_ADMIN_TOKEN": "env-provided-token-0123456789"})
    try:
        r = httpx.get(f"{proc.api_url}{V4}/user/tokens/verify", headers=_h("env-provided-token-0123456789"))
        assert r.status_code == 200
        assert not (tmp_path / "data" / "admin-token").exists()
    finally:
        assert proc.stop() == 0


def test_no_private_key_in_clear_anywhere(tmp_path: Path, pki: UploadPki) -> None:
    data = tmp_path / "data"
    proc = start_serve(data)
    token = proc.token
    leaf = pki.client("secret.example.test")
    cert, key = leaf_pems(leaf)
    key_body = "".join(key.splitlines()[1:-1])
    zone = httpx.post(f"{proc.api_url}{V4}/zones", json={"name": "secret.test"}, headers=_h(token)).json()["result"][
        "id"
    ]
    responses = []
    for path in ("/origin_tls_client_auth", "/origin_tls_client_auth/hostnames/certificates"):
        responses.append(
            httpx.post(
                f"{proc.api_url}{V4}/zones/{zone}{path}",
                headers=_h(token),
                json={"certificate": cert, "private_key": key},
            ).text
        )
        responses.append(httpx.get(f"{proc.api_url}{V4}/zones/{zone}{path}", headers=_h(token)).text)
    # A rejected upload (key mismatch) must not echo the key either.
    other_key = leaf_pems(pki.client("other.example.test"))[1]
    responses.append(
        httpx.post(
            f"{proc.api_url}{V4}/zones/{zone}/origin_tls_client_auth",
            headers=_h(token),
            json={"certificate": cert, "private_key": other_key},
        ).text
    )
    responses.append(
        httpx.post(
            f"{proc.api_url}{V4}/zones/{zone}/origin_tls_client_auth",
            headers=_h(token),
            json={"certificate": 5, "private_key": key},
        ).text
    )
    proc.stop()
    other_body = "".join(other_key.splitlines()[1:-1])
    for text in responses:
        assert "PRIVATE KEY" not in text
        assert key_body[:40] not in text and other_body[:40] not in text
    for path in data.iterdir():
        blob = path.read_bytes()
        assert b"PRIVATE KEY" not in blob, path
        assert key_body[:40].encode() not in blob, path
    assert key_body[:40] not in proc.output() and "PRIVATE KEY" not in proc.output()
    # The key is there, sealed: the database holds ciphertext rows for both certificates and the CAs.
    with sqlite3.connect(data / "originlock.db") as db:
        sealed = [row[0] for row in db.execute("select key_sealed from aop_certs")]
    assert len(sealed) == 2 and all(s[:1] == b"\x01" and len(s) > 100 for s in sealed)
