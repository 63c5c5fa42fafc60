"""Revoking an Origin CA certificate through the API makes the edge stop trusting it (Full (strict): 526).

A real nginx origin serves a certificate the deployment's Origin CA issued through the official SDK; the
edge pulls over a pooled keep-alive connection; the certificate is revoked through the SDK; within a
couple of seconds requests fail with 526, the pooled connection verified before the revocation carries no
further request (nginx logs none) and is closed, and the edge's access log says why.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cloudflare import Cloudflare
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve

HOST = "app.example.test"


@dataclass
class Setup:
    serve: ServeProcess
    cf: Cloudflare
    zone_id: str
    cert_id: str
    origin_port: int
    origin_log: Path
    edge_log: Path

    def through_edge(self) -> tuple[int, str]:
        port = self.serve.https_port
        out = subprocess.run(
            [
                *("curl", "-sS", "-k", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"),
                *("--resolve", f"{HOST}:{port}:127.0.0.1", f"https://{HOST}:{port}/"),
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert out.returncode == 0, out.stderr
        body, _, status = out.stdout.rpartition("\n")
        return int(status), body

    def origin_requests(self) -> list[str]:
        return self.origin_log.read_text().splitlines() if self.origin_log.exists() else []

    def edge_to_origin_connections(self) -> int:
        """Established TCP connections to the origin's port (only the edge dials it)."""
        out = subprocess.run(
            ["ss", "-Htn", "state", "established", f"( dport = :{self.origin_port} )"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return len([line for line in out.stdout.splitlines() if line.strip()])


def _csr(key: ec.EllipticCurvePrivateKey) -> str:
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, HOST)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    nginx_bin = require_executable("nginx")
    require_executable("curl")
    require_executable("ss")
    work = tmp_path_factory.mktemp("revocation")
    origin_port = free_port()
    edge_log = work / "edge-access.log"
    serve = start_serve(
        work / "data", extra_args=["--origin-https-port", str(origin_port), "--access-log", str(edge_log)]
    )
    cf = Cloudflare(api_token=serve.token, base_url=f"{serve.api_url}/client/v4", max_retries=0)
    account = next(iter(cf.accounts.list()))
    zone = cf.zones.create(account={"id": account.id}, name="example.test")
    assert zone is not None
    cf.zones.settings.edit("ssl", zone_id=zone.id, value="strict")
    # The origin's key never leaves this test: the API signs a CSR, as Cloudflare's Origin CA does.
    key = ec.generate_private_key(ec.SECP256R1())
    issued = cf.origin_ca_certificates.create(
        csr=_csr(key), hostnames=[HOST], request_type="origin-ecc", requested_validity=30
    )
    assert issued is not None and issued.id and issued.certificate
    # The proxied record last: a snapshot that routes the hostname (one consistent read of the store) is
    # already strict, so the first 200 comes over a connection verified in strict mode.
    cf.dns.records.create(zone_id=zone.id, name=HOST, type="A", content="127.0.0.1", ttl=1, proxied=True)
    (work / "origin.pem").write_text(issued.certificate)
    (work / "origin.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    origin_log = work / "origin-access.log"
    block = f"""
  log_format reqs '$connection $connection_requests $request';
  server {{
    listen 127.0.0.1:{origin_port} ssl;
    ssl_certificate {work}/origin.pem;
    ssl_certificate_key {work}/origin.key;
    access_log {origin_log} reqs;
    keepalive_timeout 300s;
    location / {{ return 200 "conn=$connection req=$connection_requests\\n"; }}
  }}"""
    nginx = NginxProcess(nginx_bin, work / "nginx", block, ports=[origin_port]).start()
    try:
        yield Setup(serve, cf, zone.id, issued.id, origin_port, origin_log, edge_log)
    finally:
        nginx.stop()
        serve.stop()


def _poll(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _statuses_until(setup: Setup, wanted: int, timeout: float) -> list[int]:
    """Request through the edge until it answers ``wanted``; every status seen, in order."""
    seen: list[int] = []

    def answered() -> bool:
        seen.append(setup.through_edge()[0])
        return seen[-1] == wanted

    _poll(answered, timeout)
    return seen


def test_revoked_origin_ca_certificate_is_refused_with_526(setup: Setup) -> None:
    # Strict mode trusts the Origin CA certificate (the configuration reaches the edge within a second;
    # until then the hostname is unknown: 530).
    assert set(_statuses_until(setup, 200, 5)) <= {530, 200}

    # The edge keeps the verified connection and reuses it: same nginx connection, more requests on it.
    first, second = setup.through_edge(), setup.through_edge()
    assert first[0] == second[0] == 200
    conn_first, conn_second = first[1].split()[0], second[1].split()[0]
    assert conn_first == conn_second, (first, second)
    assert setup.edge_to_origin_connections() >= 1  # idle in the pool now

    setup.cf.origin_ca_certificates.delete(setup.cert_id)
    revoked_at = time.monotonic()
    statuses = _statuses_until(setup, 526, 3)
    assert time.monotonic() - revoked_at < 3
    assert set(statuses) <= {200, 526}  # the old snapshot's last requests, then 526: never anything else

    # From now on the origin is not reached at all: not over the pooled connection, not over a new one.
    seen = len(setup.origin_requests())
    for _ in range(3):
        status, body = setup.through_edge()
        assert status == 526 and "Error 526" in body
    time.sleep(0.3)
    assert len(setup.origin_requests()) == seen
    # The connection verified before the revocation was closed, not left idle in the pool.
    _poll(lambda: setup.edge_to_origin_connections() == 0, 3)

    # The access log says why, naming the certificate (and nothing secret).
    def revoked_lines() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in setup.edge_log.read_text().splitlines() if line.startswith("{")]
        return [rec for rec in lines if rec.get("status") == 526]

    _poll(lambda: len(revoked_lines()) >= 3, 3)
    detail = str(revoked_lines()[-1]["error_detail"])
    assert "revoked" in detail and setup.cert_id in detail, detail
    assert "PRIVATE KEY" not in setup.edge_log.read_text()
