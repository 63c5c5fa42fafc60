"""Helpers for origin-kit tests: a throwaway PKI on disk, ports, process control, curl.

Test keys are written to a temp dir: they are test material for the servers under test (nginx and
Apache need files), never production keys.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from originlock.testing.ports import free_port as free_port  # the tests' one source of ports
from originlock.tls.issue import Issued, issue_ca, issue_leaf

NOW = datetime.now(UTC)


@dataclass(frozen=True)
class Pki:
    dir: Path
    origin_pull_ca: Issued  # deployment-wide CA (global AOP)
    global_edge: Issued  # the edge's shared leaf
    zone_ca: Issued  # a customer's own CA (zone/hostname AOP)
    zone_edge: Issued  # the leaf uploaded for the zone
    stranger_ca: Issued
    stranger: Issued
    server_ca: Issued
    server: Issued  # the origin's own server certificate

    def path(self, name: str) -> Path:
        return self.dir / name

    def client(self, leaf: Issued, ca: Issued) -> tuple[str, bytes]:
        return leaf.cert_pem + ca.cert_pem, leaf.key_pem


def _write(path: Path, data: str | bytes) -> None:
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def make_pki(d: Path) -> Pki:
    d.chmod(0o755)  # nginx/apache workers may run as another user
    pull = issue_ca("originlock origin-pull CA", now=NOW)
    zone = issue_ca("example.test customer CA", now=NOW, organization="Example Inc")
    stranger_ca = issue_ca("stranger CA", now=NOW, organization="Elsewhere")
    server_ca = issue_ca("origin server CA", now=NOW)
    pki = Pki(
        dir=d,
        origin_pull_ca=pull,
        global_edge=issue_leaf(pull, "origin-pull.originlock.test", now=NOW),
        zone_ca=zone,
        zone_edge=issue_leaf(zone, "edge.example.test", now=NOW),
        stranger_ca=stranger_ca,
        stranger=issue_leaf(stranger_ca, "origin-pull.originlock.test", now=NOW),
        server_ca=server_ca,
        server=issue_leaf(
            server_ca,
            "app.example.test",
            now=NOW,
            client=False,
            server=True,
            sans=["app.example.test", "localhost", "127.0.0.1"],
        ),
    )
    files: dict[str, str | bytes] = {
        "origin-pull-ca.pem": pull.cert_pem,
        "zone-ca.pem": zone.cert_pem,
        "both-ca.pem": pull.cert_pem + zone.cert_pem,
        "server.pem": pki.server.cert_pem + server_ca.cert_pem,
        "server.key": pki.server.key_pem,
        "server-ca.pem": server_ca.cert_pem,
        "global-edge.pem": pki.global_edge.cert_pem + pull.cert_pem,
        "global-edge.key": pki.global_edge.key_pem,
        "zone-edge.pem": pki.zone_edge.cert_pem + zone.cert_pem,
        "zone-edge.key": pki.zone_edge.key_pem,
        "stranger.pem": pki.stranger.cert_pem,
        "stranger.key": pki.stranger.key_pem,
    }
    for name, data in files.items():
        _write(d / name, data)
        (d / name).chmod(0o644)
    return pki


def _logs(*logs: Path) -> str:
    return "\n".join(log.read_text(errors="replace") for log in logs if log.exists())


def wait_port(port: int, proc: subprocess.Popen[bytes], *logs: Path, timeout: float = 10.0) -> None:
    """Wait until something listens on 127.0.0.1:``port``; fail with the server's logs if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {_logs(*logs)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}: {_logs(*logs)}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def curl(
    url: str, *, ca: Path | None = None, cert: Path | None = None, key: Path | None = None, resolve: str | None = None
) -> tuple[int, str]:
    """(exit code, HTTP status or '') of one curl request; exit code 0 means a response arrived."""
    cmd = ["curl", "-sS", "-o", os.devnull, "-w", "%{http_code}", "--max-time", "10"]
    cmd += ["--cacert", str(ca)] if ca else ["-k"]
    if cert and key:
        cmd += ["--cert", str(cert), "--key", str(key)]
    if resolve:
        cmd += ["--resolve", resolve]
    done = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=20)
    return done.returncode, done.stdout.strip()


class StubControlPlane:
    """A stand-in for the control plane's two endpoints the origin kit uses (the real API is built elsewhere).

    ``zones`` maps zone name -> id; ``identities`` maps (zone_id, hostname or None) -> result object.
    Requests are recorded in ``seen`` as (path with query, Authorization header).
    """

    def __init__(self, token: str, zones: dict[str, str], identities: dict[tuple[str, str | None], dict[str, Any]]):
        self.token, self.zones, self.identities = token, zones, identities
        self.seen: list[tuple[str, str | None]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                stub.seen.append((self.path, self.headers.get("Authorization")))
                status, body = stub.answer(self.path, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, auth: str | None) -> tuple[int, dict[str, Any]]:
        def ok(result: Any) -> tuple[int, dict[str, Any]]:
            return 200, {"success": True, "errors": [], "messages": [], "result": result}

        if auth != f"Bearer {self.token}":
            return 403, {
                "success": False,
                "errors": [{"code": 9109, "message": "Invalid access token"}],
                "messages": [],
                "result": None,
            }
        parts = urlsplit(path)
        query = parse_qs(parts.query)
        if parts.path == "/client/v4/zones":
            name = query.get("name", [""])[0]
            found = [{"id": self.zones[name], "name": name}] if name in self.zones else []
            return ok(found)
        prefix, suffix = "/client/v4/zones/", "/origin_tls_client_auth/edge_identity"
        if parts.path.startswith(prefix) and parts.path.endswith(suffix):
            zone_id = parts.path[len(prefix) : -len(suffix)]
            key = (zone_id, query.get("hostname", [None])[0])
            if key in self.identities:
                return ok(self.identities[key])
            return ok({"source": "none", "certificate_id": None, "certificate": None, "ca_bundle": None})
        return 404, {
            "success": False,
            "errors": [{"code": 7003, "message": "No route for that URI"}],
            "messages": [],
            "result": None,
        }

    def __enter__(self) -> StubControlPlane:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
