"""The origin kit's whole promise, with every part real: `originlock origin config` writes the nginx and Apache
configuration (enforce phase) and CA bundle from a running control plane; the servers run with it; a request
through the edge succeeds, the same request straight to the origin is refused, and `origin check` says LOCKED."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ok_servers import apache, nginx

from originlock.testing.nginx import free_port
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, int, Path]]:
    work = tmp_path_factory.mktemp("through-edge")
    work.chmod(0o755)  # Apache's workers read the certificates
    port = free_port()
    serve = start_serve(work / "data", extra_args=["--origin-https-port", str(port), "--access-log", "off"])
    api = httpx.Client(base_url=f"{serve.api_url}/client/v4", headers={"Authorization": f"Bearer {serve.token}"})
    zone = api.post("/zones", json={"name": "kit.test"}).json()["result"]["id"]
    api.post(f"/zones/{zone}/dns_records", json={"type": "A", "name": "app", "content": "127.0.0.1", "proxied": True})
    api.patch(f"/zones/{zone}/settings/tls_client_auth", json={"value": "on"})
    api.close()
    server = UploadPki.create("origin server CA").server("app.kit.test")
    (work / "server.pem").write_text(server.cert_pem)
    (work / "server.key").write_bytes(server.key_pem)
    for name in ("server.pem", "server.key"):
        (work / name).chmod(0o644)
    yield serve, port, work
    serve.stop()


def _cli(serve: ServeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORIGINLOCK_API_URL": serve.api_url, "ORIGINLOCK_API_TOKEN": serve.token}
    return subprocess.run(
        [sys.executable, "-m", "originlock", *args], capture_output=True, text=True, env=env, timeout=60
    )


def _enforce_block(serve: ServeProcess, server: str, port: int, work: Path, location: str) -> str:
    r = _cli(
        serve,
        "origin",
        "config",
        server,
        "--zone",
        "kit.test",
        "--out-dir",
        str(work / "certs"),
        "--server-cert",
        str(work / "server.pem"),
        "--server-key",
        str(work / "server.key"),
        "--port",
        str(port),
        "--phase",
        "enforce",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    (work / "certs").chmod(0o755)
    for pem in (work / "certs").iterdir():
        pem.chmod(0o644)
    block = str(json.loads(r.stdout)["phases"]["enforce"])
    # The operator's own content goes where the snippet leaves room for it.
    closing = block.rindex("}" if server == "nginx" else "</VirtualHost>")
    return block[:closing] + location + "\n" + block[closing:]


def _through_edge(serve: ServeProcess) -> str:
    deadline = time.monotonic() + 5
    body = ""
    while time.monotonic() < deadline:
        body = subprocess.run(
            [
                "curl",
                "-sk",
                "--max-time",
                "5",
                "--resolve",
                f"app.kit.test:{serve.https_port}:127.0.0.1",
                f"https://app.kit.test:{serve.https_port}/",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
        if "origin says hello" in body:
            break
        time.sleep(0.1)
    return body


def _direct(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sk", "--max-time", "5", f"https://127.0.0.1:{port}/", "-H", "Host: app.kit.test"],
        capture_output=True,
        text=True,
        timeout=20,
    )


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_generated_config_locks_the_origin(served: tuple[ServeProcess, int, Path], server: str) -> None:
    serve, port, work = served
    workdir = work / server
    if server == "nginx":
        block = _enforce_block(serve, "nginx", port, work, "    location / { try_files /index.html =404; }")
        block = block.replace(f"listen {port} ssl", f"listen 127.0.0.1:{port} ssl")
        running = nginx(workdir, block, [port])
    else:
        block = _enforce_block(serve, "apache", port, work, "")
        running = apache(workdir, block, [port])
    with running:
        assert "origin says hello" in _through_edge(serve)
        direct = _direct(port)
        assert "origin says hello" not in direct.stdout  # refused: 400 from nginx, a TLS alert from Apache
        r = _cli(
            serve,
            "origin",
            "check",
            f"https://127.0.0.1:{port}",
            "--hostname",
            "app.kit.test",
            "--zone",
            "kit.test",
            "--via-edge",
            f"https://127.0.0.1:{serve.https_port}",
            "--json",
        )
        assert json.loads(r.stdout)["verdict"] == "LOCKED", r.stdout + r.stderr
        assert r.returncode == 0
