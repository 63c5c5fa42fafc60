"""A real nginx for tests and benchmarks: temp prefix, ephemeral ports, always killed."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from originlock.testing.ports import free_port

__all__ = ["NginxProcess", "free_port", "tls_server_block", "wait_for_port"]


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.02)


class NginxProcess:
    """``NginxProcess(binary, prefix, http_block).start()`` runs ``nginx -g 'daemon off;'`` in the
    foreground with one worker; :meth:`stop` terminates it (and kills it if needed)."""

    def __init__(self, binary: str, prefix: Path, http_block: str, *, ports: list[int], workers: int = 1) -> None:
        self.binary = binary
        self.prefix = prefix
        self.http_block = http_block
        self.ports = ports
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        return self.prefix / "nginx.conf"

    def start(self) -> NginxProcess:
        (self.prefix / "logs").mkdir(parents=True, exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf_path.write_text(
            f"{user}worker_processes {self.workers};\npid {self.prefix}/nginx.pid;\n"
            f"error_log {self.prefix}/logs/error.log warn;\n"
            "events { worker_connections 4096; }\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {self.prefix}/tmp;\n"
            f"  proxy_temp_path {self.prefix}/tmp;\n  default_type text/plain;\n"
            f"  keepalive_requests 1000000;\n{self.http_block}\n}}\n"
        )
        (self.prefix / "tmp").mkdir(exist_ok=True)
        pid_file = self.prefix / "nginx.pid"
        pid_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.prefix), "-c", str(self.conf_path), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            # nginx writes its pid file once it holds every listening socket. Waiting for a port to answer
            # is not enough: another process that took the port meanwhile answers too, while this nginx is
            # still retrying its bind() (and gives up), and the test then talks to the wrong server.
            self._wait_for_pid_file(pid_file)
            for port in self.ports:
                wait_for_port(port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"nginx did not start: {self.error_log()}") from None
        return self

    def _wait_for_pid_file(self, pid_file: Path, timeout: float = 10.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not (pid_file.exists() and pid_file.read_text().strip() == str(self.proc.pid)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError("nginx did not bind its listening sockets")
            time.sleep(0.02)

    def error_log(self) -> str:
        path = self.prefix / "logs" / "error.log"
        return path.read_text() if path.exists() else ""

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None


def tls_server_block(
    port: int,
    cert: Path,
    key: Path,
    *,
    client_ca: Path | None = None,
    verify: str = "on",
    body: str = "dn=$ssl_client_s_dn host=$host\\n",
    extra: str = "",
) -> str:
    """An nginx ``server`` block on 127.0.0.1:``port`` over TLS, answering ``body`` (nginx variables allowed).

    With ``client_ca``, it requires (``verify="on"``) or asks for (``"optional"``) a client certificate from
    that CA bundle: the origin side of Authenticated Origin Pulls.
    """
    client = (
        f"ssl_client_certificate {client_ca};\n    ssl_verify_client {verify};\n    ssl_verify_depth 2;\n"
        if client_ca
        else ""
    )
    return (
        f"  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
        f'    {client}    {extra}\n    location / {{ return 200 "{body}"; }}\n  }}\n'
    )
