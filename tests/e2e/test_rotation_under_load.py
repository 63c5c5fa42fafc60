"""Zero-downtime rotation, the documented way (upload new -> active -> delete old), 20 times for a zone
certificate and 20 times for a hostname certificate, while a load generator runs: no request fails, and
after each rotation the origin sees the new certificate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from originlock.testing.nginx import NginxProcess, free_port, tls_server_block
from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki, leaf_pems

ROTATIONS = 20


class Load:
    """Keep-alive HTTPS clients hammering the edge for both hostnames until stopped."""

    def __init__(self, port: int, hosts: tuple[str, ...], workers: int = 4) -> None:
        self.port, self.hosts = port, hosts
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(workers)]

    def _run(self, index: int) -> None:
        host = self.hosts[index % len(self.hosts)]
        with httpx.Client(verify=False, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    r = client.get(
                        f"https://127.0.0.1:{self.port}/", headers={"Host": host}, extensions={"sni_hostname": host}
                    )
                    if r.status_code == 200 and "dn=CN=" in r.text:
                        self.ok += 1
                    else:
                        self.failures.append(f"{host}: {r.status_code} {r.text[:80]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{host}: {type(exc).__name__}")

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, UploadPki, str, httpx.Client]]:
    nginx_bin = require_executable("nginx")
    work: Path = tmp_path_factory.mktemp("rotation")
    pki = UploadPki.create("rotation CA")
    server = pki.server("origin.rot.test")
    (work / "origin.pem").write_text(server.cert_pem)
    (work / "origin.key").write_bytes(server.key_pem)
    (work / "ca.pem").write_text(pki.ca.cert_pem)
    port = free_port()
    block = tls_server_block(
        port, work / "origin.pem", work / "origin.key", client_ca=work / "ca.pem", body="dn=$ssl_client_s_dn\\n"
    )
    nginx = NginxProcess(nginx_bin, work / "nginx", block, ports=[port]).start()
    serve = start_serve(work / "data", extra_args=["--origin-https-port", str(port), "--access-log", "off"])
    api = httpx.Client(base_url=f"{serve.api_url}/client/v4", headers={"Authorization": f"Bearer {serve.token}"})
    zone = api.post("/zones", json={"name": "rot.test"}).json()["result"]["id"]
    for name in ("zone", "host"):
        api.post(
            f"/zones/{zone}/dns_records", json={"type": "A", "name": name, "content": "127.0.0.1", "proxied": True}
        )
    api.put(f"/zones/{zone}/origin_tls_client_auth/settings", json={"enabled": True})
    yield serve, pki, zone, api
    api.close()
    serve.stop()
    nginx.stop()


def _wait_for(port: int, host: str, cn: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=False, timeout=5) as client:
        while time.monotonic() < deadline:
            r = client.get(f"https://127.0.0.1:{port}/", headers={"Host": host}, extensions={"sni_hostname": host})
            if f"CN={cn}" in r.text:
                return
            time.sleep(0.05)
    raise AssertionError(f"{host} never presented CN={cn}")


def test_rotations_under_load_fail_nothing(setup: tuple[ServeProcess, UploadPki, str, httpx.Client]) -> None:
    serve, pki, zone, api = setup
    base = f"/zones/{zone}/origin_tls_client_auth"

    def upload(path: str, cn: str) -> str:
        cert, key = leaf_pems(pki.client(cn))
        result = api.post(path, json={"certificate": cert, "private_key": key}).json()["result"]
        assert result["status"] == "active"  # step 2 of the docs: check the new one is active
        return str(result["id"])

    zone_cert = upload(base, "zone-r0")
    host_cert = upload(f"{base}/hostnames/certificates", "host-r0")
    api.put(
        f"{base}/hostnames", json={"config": [{"hostname": "host.rot.test", "cert_id": host_cert, "enabled": True}]}
    )
    _wait_for(serve.https_port, "zone.rot.test", "zone-r0")
    _wait_for(serve.https_port, "host.rot.test", "host-r0")

    with Load(serve.https_port, ("zone.rot.test", "host.rot.test")) as load:
        for i in range(1, ROTATIONS + 1):
            new_zone = upload(base, f"zone-r{i}")
            new_host = upload(f"{base}/hostnames/certificates", f"host-r{i}")
            config = [{"hostname": "host.rot.test", "cert_id": new_host, "enabled": True}]
            assert api.put(f"{base}/hostnames", json={"config": config}).status_code == 200
            _wait_for(serve.https_port, "zone.rot.test", f"zone-r{i}")
            _wait_for(serve.https_port, "host.rot.test", f"host-r{i}")
            assert api.delete(f"{base}/{zone_cert}").status_code == 200
            assert api.delete(f"{base}/hostnames/certificates/{host_cert}").status_code == 200
            zone_cert, host_cert = new_zone, new_host
        time.sleep(0.5)  # requests in flight across the last deletion
    assert load.failures == []
    assert load.ok > ROTATIONS * 4
