"""FIPS profile against real nginx origins: an origin that only allows FIPS suites works for a FIPS zone; one
that offers only a non-FIPS suite is refused (525) for the FIPS zone but not for an ordinary one; and a FIPS
zone never presents the shared certificate, so an origin that trusts only the origin-pull CA gets none."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki, leaf_pems


@dataclass
class Setup:
    serve: ServeProcess
    api: httpx.Client
    ports: dict[str, int]
    pki: UploadPki


def _origin(nginx_bin: str, work: Path, name: str, port: int, tls_lines: str) -> NginxProcess:
    return NginxProcess(
        nginx_bin,
        work / name,
        f"""
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {work}/origin.pem;
    ssl_certificate_key {work}/origin.key;
    {tls_lines}
    location / {{ return 200 "{name} dn=$ssl_client_s_dn cipher=$ssl_cipher\\n"; }}
  }}""",
        ports=[port],
    ).start()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    nginx_bin = require_executable("nginx")
    work = tmp_path_factory.mktemp("fips")
    pki = UploadPki.create("fips CA")
    server = pki.server("origin.fips.test")  # ECDSA: the origins offer ECDHE-ECDSA suites
    (work / "origin.pem").write_text(server.cert_pem)
    (work / "origin.key").write_bytes(server.key_pem)
    (work / "ca.pem").write_text(pki.ca.cert_pem)
    ports = {"fipsonly": free_port(), "chacha": free_port()}
    # The origins hold their ports before serve picks its own (free_port() cannot hand out a bound port).
    # Started after serve, an origin could lose its port to one of serve's listeners while the port still
    # answered, and every b.* request got 525 from an edge speaking TLS to its own HTTP port (the failure
    # a full run once showed, reproduced by forcing that collision).
    origins = [
        _origin(
            nginx_bin,
            work,
            "fipsonly",
            ports["fipsonly"],
            "ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;"
            f" ssl_client_certificate {work}/ca.pem; ssl_verify_client optional;",
        ),
        _origin(
            nginx_bin,
            work,
            "chacha",
            ports["chacha"],
            "ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-CHACHA20-POLY1305;",
        ),
    ]
    try:
        serve = start_serve(
            work / "data", extra_args=["--origin-https-port", str(ports["fipsonly"]), "--access-log", "off"]
        )
        api = httpx.Client(base_url=f"{serve.api_url}/client/v4", headers={"Authorization": f"Bearer {serve.token}"})
        yield Setup(serve, api, ports, pki)
        api.close()
        serve.stop()
    finally:
        for origin in origins:
            origin.stop()


def _get(setup: Setup, host: str, expect: str, timeout: float = 10.0) -> str:
    port = setup.serve.https_port
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = subprocess.run(
            ["curl", "-sk", "--max-time", "5", "--resolve", f"{host}:{port}:127.0.0.1", f"https://{host}:{port}/"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
        if expect in body:
            break
        time.sleep(0.1)
    return body


def test_fips_zone_suites_and_no_shared_certificate(setup: Setup) -> None:
    api = setup.api
    zones = {}
    for name in ("fips.test", "plain.test"):
        zone = api.post("/zones", json={"name": name}).json()["result"]["id"]
        zones[name] = zone
        for record in ("a", "b"):
            api.post(
                f"/zones/{zone}/dns_records",
                json={"type": "A", "name": record, "content": "127.0.0.1", "proxied": True},
            )
    fips = zones["fips.test"]
    assert api.patch(f"/zones/{fips}/settings/fips", json={"value": "on"}).status_code == 200
    # b.* goes to the ChaCha-only origin through an Origin Rule on the port.
    for zone_id, zone_name in ((fips, "fips.test"), (zones["plain.test"], "plain.test")):
        rule = {
            "expression": f'http.host eq "b.{zone_name}"',
            "action": "route",
            "action_parameters": {"origin": {"port": setup.ports["chacha"]}},
        }
        r = api.put(f"/zones/{zone_id}/rulesets/phases/http_request_origin/entrypoint", json={"rules": [rule]})
        assert r.status_code == 200, r.text

    body = _get(setup, "a.fips.test", "fipsonly")
    assert "fipsonly" in body and "GCM" in body  # FIPS suites only: works
    assert "525" in _get(setup, "b.fips.test", "525")  # only ChaCha20 offered: refused for the FIPS zone
    assert "chacha" in _get(setup, "b.plain.test", "chacha")  # the ordinary zone still reaches it

    # The shared certificate is never presented for the FIPS zone: 525 with the reason, not a weaker pull.
    r = api.patch(f"/zones/{fips}/settings/tls_client_auth", json={"value": "on"})
    assert "never presents the shared global certificate" in r.json()["messages"][0]["message"]
    page = _get(setup, "a.fips.test", "525")
    assert "525" in page and "FIPS" in page
    # A zone certificate of the zone's own CA is presented instead.
    cert, key = leaf_pems(setup.pki.client("fips.test", key="ecdsa-p256"))
    assert (
        api.post(f"/zones/{fips}/origin_tls_client_auth", json={"certificate": cert, "private_key": key}).status_code
        == 200
    )
    api.put(f"/zones/{fips}/origin_tls_client_auth/settings", json={"enabled": True})
    assert "dn=CN=fips.test" in _get(setup, "a.fips.test", "dn=CN=fips.test")


def test_an_origin_whose_port_is_taken_does_not_start(tmp_path: Path) -> None:
    """The harness half of the flake above: a port that answers is not proof that *this* nginx listens."""
    nginx_bin = require_executable("nginx")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        origin = NginxProcess(nginx_bin, tmp_path, f"server {{ listen 127.0.0.1:{port}; }}", ports=[port])
        try:
            with pytest.raises(RuntimeError, match="nginx did not start"):
                origin.start()
        finally:
            origin.stop()
