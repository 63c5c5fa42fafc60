"""`originlock serve` as a real subprocess, for end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from originlock.testing.node_process import NodeProcess, launch
from originlock.testing.ports import free_port

__all__ = ["ServeProcess", "free_port", "start_serve"]


@dataclass
class ServeProcess(NodeProcess):
    """`originlock serve` running as a subprocess, as a user starts it."""

    api_url: str
    http_port: int
    https_port: int

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()


def start_serve(
    data_dir: Path,
    store: str | None = None,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    ready_path: str = "/healthz",
) -> ServeProcess:
    """``ready_path``: the API's path that answers 200 once the node is up (``/healthz/snapshot`` for a node
    whose store is down: its edge serves, its control plane answers 503)."""
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-serve-{port}.log"
    http_port, https_port = free_port(), free_port()
    args = ["--data-dir", str(data_dir), "--api", f"127.0.0.1:{port}"]
    args += ["--http", f"127.0.0.1:{http_port}", "--https", f"127.0.0.1:{https_port}"]
    if store:
        args += ["--store", store]
    extra = extra_args or []
    # One edge process unless a test asks for more: `--workers auto` (the default) would spawn one per core.
    args += extra if "--workers" in extra else ["--workers", "1", *extra]
    url = f"http://127.0.0.1:{port}"
    proc = launch("serve", args, log_path, url, env, ready_path)
    return ServeProcess(proc, data_dir, log_path, url, http_port, https_port)
