"""`originlock api`: the control plane alone (no edge listeners), bound before anything is announced."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from originlock.testing.serve import free_port

pytestmark = pytest.mark.slow


def _api_role(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIGINLOCK_")}
    args = [sys.executable, "-m", "originlock", "api", "--store", f"sqlite:///{tmp_path / 'store.db'}"]
    args += ["--data-dir", str(tmp_path / "data"), "--api", f"127.0.0.1:{port}", "--origin-monitor-interval", "0"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.fixture(scope="module")
def api_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    tmp = tmp_path_factory.mktemp("api-role")
    port = free_port()
    process = _api_role(tmp, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/client/v4/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "originlock api did not answer within 30 s"
                time.sleep(0.2)
        yield tmp, port
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


def test_the_api_role_serves_the_control_plane_without_an_edge(api_node: tuple[Path, int]) -> None:
    tmp, port = api_node
    token = (tmp / "data" / "admin-token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        f"http://127.0.0.1:{port}/client/v4/zones", json={"name": "role.test"}, headers=headers, timeout=10
    )
    assert created.status_code == 200, created.text
    listed = httpx.get(f"http://127.0.0.1:{port}/client/v4/zones", headers=headers, timeout=10).json()
    assert [z["name"] for z in listed["result"]] == ["role.test"]
    # The API gate and its body limit apply to this role too.
    too_big = httpx.post(
        f"http://127.0.0.1:{port}/client/v4/zones", content=b"{" + b" " * (2 << 20) + b"}", headers=headers
    )
    assert too_big.status_code == 413, too_big.text


def test_a_busy_api_port_is_named_and_fails(api_node: tuple[Path, int], tmp_path: Path) -> None:
    _, port = api_node
    second = _api_role(tmp_path, port)
    output, _ = second.communicate(timeout=30)
    assert second.returncode == 1, output
    assert f"cannot listen on 127.0.0.1:{port} for the API (--api)" in output
    assert "control plane on" not in output and "Traceback" not in output
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # the first node still listens
