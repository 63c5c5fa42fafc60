"""The product in one screen: configure through the official SDK, a real nginx origin that requires a client
certificate serves requests through the edge and refuses the same request sent straight to it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cloudflare import Cloudflare

from originlock.testing.nginx import NginxProcess, free_port, tls_server_block
from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki, leaf_pems


@dataclass
class Product:
    serve: ServeProcess
    nginx: NginxProcess
    cf: Cloudflare
    zone_id: str
    pki: UploadPki
    origin_port: int
    workdir: Path

    def through_edge(self, host: str) -> subprocess.CompletedProcess[str]:
        port = self.serve.https_port
        return subprocess.run(
            [
                "curl",
                "-sS",
                "-k",
                "--max-time",
                "10",
                "--resolve",
                f"{host}:{port}:127.0.0.1",
                f"https://{host}:{port}/",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )

    def wait_for_dn(self, host: str, expected: str, timeout: float = 10.0) -> str:
        """The body the origin echoes, once it shows ``expected`` (a change must reach the edge within 1 s)."""
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            body = self.through_edge(host).stdout
            if expected in body:
                return body
            time.sleep(0.1)
        return body


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    nginx_bin = require_executable("nginx")
    require_executable("curl")
    work = tmp_path_factory.mktemp("product")
    pki = UploadPki.create("customer private CA")
    server = pki.server("origin.example.test", sans=("app.example.test", "www.example.test", "127.0.0.1"))
    (work / "origin.pem").write_text(server.cert_pem)
    (work / "origin.key").write_bytes(server.key_pem)
    serve = start_serve(
        work / "data", extra_args=["--origin-https-port", str(origin_port := free_port()), "--access-log", "off"]
    )
    # The origin trusts both the deployment's origin-pull CA (global AOP) and the customer's own CA (custom certs).
    bundle = httpx.get(f"{serve.api_url}/ca/origin-pull.pem").text + pki.ca.cert_pem
    (work / "trusted.pem").write_text(bundle)
    block = tls_server_block(origin_port, work / "origin.pem", work / "origin.key", client_ca=work / "trusted.pem")
    nginx = NginxProcess(nginx_bin, work / "nginx", block, ports=[origin_port]).start()
    cf = Cloudflare(api_token=serve.token, base_url=f"{serve.api_url}/client/v4", max_retries=0)
    account = next(iter(cf.accounts.list()))
    zone = cf.zones.create(account={"id": account.id}, name="example.test")
    assert zone is not None
    for name in ("app", "www"):
        cf.dns.records.create(
            zone_id=zone.id, name=f"{name}.example.test", type="A", content="127.0.0.1", ttl=1, proxied=True
        )
    cf.zones.settings.edit("ssl", zone_id=zone.id, value="full")
    yield Product(serve, nginx, cf, zone.id, pki, origin_port, work)
    nginx.stop()
    serve.stop()


def test_precedence_through_the_sdk_with_a_real_origin(product: Product) -> None:
    cf, zone = product.cf, product.zone_id
    # Nothing enabled: the edge presents no certificate and nginx says so.
    assert "No required SSL certificate was sent" in product.wait_for_dn("app.example.test", "No required SSL")

    # Global AOP: the deployment's shared leaf.
    cf.zones.settings.edit("tls_client_auth", zone_id=zone, value="on")
    assert "CN=originlock-edge" in product.wait_for_dn("app.example.test", "CN=originlock-edge")

    # Zone-level custom certificate takes precedence once zone-level AOP is enabled.
    zcert, zkey = leaf_pems(product.pki.client("zone.example.test"))
    cf.origin_tls_client_auth.zone_certificates.create(zone_id=zone, certificate=zcert, private_key=zkey)
    cf.origin_tls_client_auth.settings.update(zone_id=zone, enabled=True)
    assert "CN=zone.example.test" in product.wait_for_dn("www.example.test", "CN=zone.example.test")

    # Per-hostname beats zone-level for its hostname only.
    hcert, hkey = leaf_pems(product.pki.client("app.example.test"))
    hc = cf.origin_tls_client_auth.hostname_certificates.create(zone_id=zone, certificate=hcert, private_key=hkey)
    assert hc is not None
    config = [{"hostname": "app.example.test", "cert_id": hc.id, "enabled": True}]
    cf.origin_tls_client_auth.hostnames.update(zone_id=zone, config=config)  # type: ignore[arg-type]
    assert "CN=app.example.test" in product.wait_for_dn("app.example.test", "CN=app.example.test")
    assert "CN=zone.example.test" in product.through_edge("www.example.test").stdout

    # enabled:false sends no certificate at all, even with zone-level and global on.
    config[0]["enabled"] = False
    cf.origin_tls_client_auth.hostnames.update(zone_id=zone, config=config)  # type: ignore[arg-type]
    assert "No required SSL certificate" in product.wait_for_dn("app.example.test", "No required SSL")

    # enabled:null voids the association: back to the zone-level certificate.
    config[0]["enabled"] = None
    cf.origin_tls_client_auth.hostnames.update(zone_id=zone, config=config)  # type: ignore[arg-type]
    assert "CN=zone.example.test" in product.wait_for_dn("app.example.test", "CN=zone.example.test")

    # Flexible: AOP never applies (and the HTTPS-only origin is not reachable over HTTP: 521).
    cf.zones.settings.edit("ssl", zone_id=zone, value="flexible")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and "dn=" in product.through_edge("www.example.test").stdout:
        time.sleep(0.1)
    assert "dn=" not in product.through_edge("www.example.test").stdout
    cf.zones.settings.edit("ssl", zone_id=zone, value="full")


def test_going_around_the_edge_is_refused(product: Product) -> None:
    direct = subprocess.run(
        [
            "curl",
            "-sS",
            "-k",
            "--max-time",
            "5",
            f"https://127.0.0.1:{product.origin_port}/",
            "-H",
            "Host: app.example.test",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert "400 No required SSL certificate was sent" in direct.stdout


def test_origin_check_says_locked_and_open(product: Product) -> None:
    """`originlock origin check` against the real origin: LOCKED (probe 3 through the edge), then an open one."""
    import json
    import os
    import sys

    cf = product.cf
    cf.zones.settings.edit("ssl", zone_id=product.zone_id, value="full")
    cf.zones.settings.edit("tls_client_auth", zone_id=product.zone_id, value="on")
    env = {**os.environ, "ORIGINLOCK_API_URL": product.serve.api_url, "ORIGINLOCK_API_TOKEN": product.serve.token}
    args = [
        sys.executable,
        "-m",
        "originlock",
        "origin",
        "check",
        f"https://127.0.0.1:{product.origin_port}",
        "--hostname",
        "www.example.test",
        "--zone",
        "example.test",
        "--json",
        "--via-edge",
        f"https://127.0.0.1:{product.serve.https_port}",
    ]
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    report = json.loads(r.stdout)
    assert report["verdict"] == "LOCKED", r.stdout + r.stderr
    assert r.returncode == 0

    open_port = free_port()
    block = tls_server_block(open_port, product.workdir / "origin.pem", product.workdir / "origin.key", body="open\\n")
    open_nginx = NginxProcess(product.nginx.binary, product.workdir / "open-nginx", block, ports=[open_port]).start()
    try:
        args[5] = f"https://127.0.0.1:{open_port}"
        args = [a for a in args if a not in ("--via-edge", f"https://127.0.0.1:{product.serve.https_port}")]
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
        report = json.loads(r.stdout)
        assert report["verdict"] == "OPEN" and r.returncode != 0
        assert any("without a client certificate" in reason for reason in report["reasons"]), report
    finally:
        open_nginx.stop()
