"""An `originlock` role (`serve`, `edge`) as a real subprocess: started as a user starts it, ready once its
health endpoint answers, stopped with a signal and waited for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["NodeProcess", "launch"]


@dataclass
class NodeProcess:
    proc: subprocess.Popen[str]
    data_dir: Path
    log_path: Path

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


def launch(
    role: str,
    args: list[str],
    log_path: Path,
    health_url: str,
    env: dict[str, str] | None,
    ready_path: str = "/healthz",
) -> subprocess.Popen[str]:
    """Run ``originlock ROLE ARGS`` with its output in ``log_path``; return once ``health_url`` + ``ready_path``
    says 200.
    Raises with the log if the process exits or is not up within 60 s (and kills it then): a start takes
    1-3 s, but three nodes starting together on a loaded 2-core machine took over 30 s once."""
    log = log_path.open("w")
    command = [sys.executable, "-m", "originlock", role, *args]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"originlock {role} exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{health_url}{ready_path}", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"originlock {role} did not come up: {log_path.read_text()}")
