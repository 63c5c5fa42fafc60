"""Helpers for the exposure monitor tests: a real store with one proxied hostname, and real nginx origins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from originlock.server.bootstrap import bootstrap
from originlock.store import dns, settings, zones
from originlock.store.db import Store
from originlock.store.pki import public_pem
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.pki import TestPki

HOST = "app.example.test"


@dataclass
class MonitorEnv:
    store: Store
    zone_id: str
    workdir: Path
    origin_port: int
    nginx_bin: str

    def origin(self, *, locked: bool, name: str) -> NginxProcess:
        """nginx on ``origin_port``: locked to the deployment's origin-pull CA, or open to anyone."""
        verify = f"ssl_client_certificate {self.workdir}/origin-pull.pem;\n    ssl_verify_client on;" if locked else ""
        block = f"""
  server {{
    listen 127.0.0.1:{self.origin_port} ssl;
    ssl_certificate {self.workdir}/server.pem;
    ssl_certificate_key {self.workdir}/server.key;
    {verify}
    location / {{ return 200 "origin says hello\\n"; }}
  }}"""
        return NginxProcess(self.nginx_bin, self.workdir / name, block, ports=[self.origin_port]).start()


def make_env(tmp_path: Path, nginx_bin: str) -> MonitorEnv:
    """A SQLite store with zone example.test, ``app`` proxied to 127.0.0.1 in Full mode with global AOP on."""
    deployment = bootstrap(tmp_path / "data")
    store = deployment.store
    with store.write() as conn:
        zone = zones.create_zone(conn, name="example.test", account_id=deployment.account_id)
        dns.create_record(conn, zone.id, dns.RecordInput("A", "app", "127.0.0.1", proxied=True))
        settings.set_setting(conn, zone.id, "ssl", "full")
        settings.set_setting(conn, zone.id, "tls_client_auth", "on")
        ca = public_pem(conn, "origin-pull")
    assert ca is not None
    work = tmp_path / "origin"
    work.mkdir()
    work.chmod(0o755)
    (work / "origin-pull.pem").write_text(ca)
    server = TestPki().server(HOST, "127.0.0.1")
    (work / "server.pem").write_text(server.cert_pem)
    (work / "server.key").write_bytes(server.key_pem)
    return MonitorEnv(store, zone.id, work, free_port(), nginx_bin)
