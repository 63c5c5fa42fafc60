"""`originlock serve` end to end with a short monitor interval: a real nginx origin locked to the deployment's
origin-pull CA shows up as LOCKED in the exposure endpoint, in /metrics and in `originlock origin status`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from monhelpers import HOST

from originlock.cli.main import main
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.pki import TestPki
from originlock.testing.require import require_executable
from originlock.testing.serve import start_serve

pytestmark = pytest.mark.slow


def _wait_for_verdict(api: httpx.Client, zone_id: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = api.get(f"/client/v4/zones/{zone_id}/origin_tls_client_auth/exposure").json()["result"]
        if result:
            return result
        time.sleep(0.2)
    return result


def test_serve_runs_the_monitor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nginx_bin = require_executable("nginx")
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    origin_port = free_port()
    serve = start_serve(
        tmp_path / "data",
        extra_args=["--origin-https-port", str(origin_port), "--origin-monitor-interval", "1", "--access-log", "off"],
    )
    nginx: NginxProcess | None = None
    try:
        work = tmp_path / "origin"
        work.mkdir()
        work.chmod(0o755)
        (work / "origin-pull.pem").write_text(httpx.get(f"{serve.api_url}/ca/origin-pull.pem").text)
        server = TestPki().server(HOST, "127.0.0.1")
        (work / "server.pem").write_text(server.cert_pem)
        (work / "server.key").write_bytes(server.key_pem)
        nginx = NginxProcess(
            nginx_bin,
            work / "nginx",
            f"""
  server {{
    listen 127.0.0.1:{origin_port} ssl;
    ssl_certificate {work}/server.pem;
    ssl_certificate_key {work}/server.key;
    ssl_client_certificate {work}/origin-pull.pem;
    ssl_verify_client on;
    location / {{ return 200 "hello\\n"; }}
  }}""",
            ports=[origin_port],
        ).start()

        api = httpx.Client(base_url=serve.api_url, headers={"Authorization": f"Bearer {serve.token}"}, timeout=10)
        account = api.get("/client/v4/accounts").json()["result"][0]["id"]
        zone_id = api.post("/client/v4/zones", json={"name": "example.test", "account": {"id": account}}).json()[
            "result"
        ]["id"]
        record = {"type": "A", "name": "app", "content": "127.0.0.1", "proxied": True}
        assert api.post(f"/client/v4/zones/{zone_id}/dns_records", json=record).status_code == 200
        assert api.patch(f"/client/v4/zones/{zone_id}/settings/tls_client_auth", json={"value": "on"}).is_success
        monitor_setting = api.get(f"/client/v4/zones/{zone_id}/settings/origin_exposure_monitor").json()["result"]
        assert monitor_setting["value"] == "on"

        result = _wait_for_verdict(api, zone_id)
        assert len(result) == 1, serve.output()
        assert result[0]["hostname"] == HOST and result[0]["verdict"] == "LOCKED", result
        assert result[0]["origin"] == f"127.0.0.1:{origin_port}"

        metrics = httpx.get(f"{serve.api_url}/metrics").text.splitlines()
        assert f'originlock_origin_exposure{{hostname="{HOST}",verdict="LOCKED",zone="example.test"}} 1.0' in metrics
        assert any(line.startswith('originlock_origin_pool_connections{state="idle"}') for line in metrics)

        args = ["origin", "status", "--api-url", serve.api_url, "--token", serve.token]
        assert main([*args, "--zone", "example.test", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [(r["zone"], r["hostname"], r["verdict"]) for r in rows] == [("example.test", HOST, "LOCKED")]
        assert main(args) == 0
        table = capsys.readouterr().out
        assert table.splitlines()[0].split()[:4] == ["ZONE", "HOSTNAME", "ORIGIN", "VERDICT"]
        assert "example.test" in table and "LOCKED" in table
    finally:
        if nginx is not None:
            nginx.stop()
        assert serve.stop() == 0
    log = serve.output()
    assert "origin exposure monitor: every 1s" in log and "origin exposure: app.example.test" in log
    assert "PRIVATE KEY" not in log


def test_interval_flag_is_validated(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "originlock", "serve", "--data-dir", str(tmp_path), "--origin-monitor-interval", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "0 disables the monitor" in done.stderr
