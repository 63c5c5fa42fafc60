"""`originlock serve` as a real subprocess, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from originlock.testing.ports import free_port

__all__ = ["ServeProcess", "free_port", "start_serve"]


@dataclass
class ServeProcess:
    """`originlock serve` running as a subprocess, as a user starts it."""

    proc: subprocess.Popen[str]
    data_dir: Path
    api_url: str
    log_path: Path
    http_port: int
    https_port: int

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def stop(self, sig: int = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text()


def start_serve(
    data_dir: Path, store: str | None = None, env: dict[str, str] | None = None, extra_args: list[str] | None = None
) -> ServeProcess:
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-serve-{port}.log"
    http_port, https_port = free_port(), free_port()
    args = [
        sys.executable,
        "-m",
        "originlock",
        "serve",
        "--data-dir",
        str(data_dir),
        "--api",
        f"127.0.0.1:{port}",
        "--http",
        f"127.0.0.1:{http_port}",
        "--https",
        f"127.0.0.1:{https_port}",
    ]
    if store:
        args += ["--store", store]
    extra = extra_args or []
    # One edge process unless a test asks for more: `--workers auto` (the default) would spawn one per core.
    args += extra if "--workers" in extra else ["--workers", "1", *extra]
    log = log_path.open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"originlock serve exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return ServeProcess(proc, data_dir, url, log_path, http_port, https_port)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"originlock serve did not come up: {log_path.read_text()}")
