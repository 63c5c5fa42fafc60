"""``originlock origin check|config`` end to end: argparse wiring, exit codes, JSON, the CA bundle file,
and the control plane asked over HTTP (a stand-in serving the two endpoints the CLI uses)."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from originlock.cli.origin import add_parser
from originlock.originkit.ssl import make_origin_ssl_context
from originlock.originkit.wsgi import make_tls_wsgi_server
from originlock.tls.issue import Issued, issue_ca, issue_leaf

NOW = datetime.now(UTC)
HOST = "app.example.test"
TOKEN = "cli-test-token"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    root = argparse.ArgumentParser(prog="originlock")
    add_parser(root.add_subparsers(dest="command", required=True))
    args = root.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


class Pki:
    def __init__(self, d: Path) -> None:
        self.dir = d
        self.edge_ca = issue_ca("edge CA", now=NOW)
        self.edge: Issued = issue_leaf(self.edge_ca, "edge", now=NOW)
        server_ca = issue_ca("server CA", now=NOW)
        server = issue_leaf(server_ca, HOST, now=NOW, client=False, server=True, sans=[HOST, "127.0.0.1"])
        files: dict[str, str | bytes] = {
            "server.pem": server.cert_pem,
            "server.key": server.key_pem,
            "edge.pem": self.edge.cert_pem,
            "edge.key": self.edge.key_pem,
            "edge-ca.pem": self.edge_ca.cert_pem,
        }
        for name, data in files.items():
            (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("cli-pki"))


def _serve(server: Any) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _hello(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture(scope="module")
def locked_origin(pki: Pki) -> Iterator[int]:
    ctx = make_origin_ssl_context(pki.dir / "server.pem", pki.dir / "server.key", edge_ca_file=pki.dir / "edge-ca.pem")
    yield from _serve(make_tls_wsgi_server("127.0.0.1", 0, _hello, ctx))


@pytest.fixture(scope="module")
def open_origin(pki: Pki) -> Iterator[int]:
    ctx = make_origin_ssl_context(
        pki.dir / "server.pem", pki.dir / "server.key", edge_ca_file=pki.dir / "edge-ca.pem", require=False
    )
    ctx.verify_mode = __import__("ssl").CERT_NONE  # an origin that never asks for a certificate
    yield from _serve(make_tls_wsgi_server("127.0.0.1", 0, _hello, ctx))


@pytest.fixture(scope="module")
def api(pki: Pki) -> Iterator[str]:
    identity = {
        "source": "zone",
        "certificate_id": "zc1",
        "certificate": pki.edge.cert_pem,
        "ca_bundle": pki.edge_ca.cert_pem,
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, body = 403, {"success": False, "errors": [{"code": 9109, "message": "bad token"}]}
            elif self.path == "/client/v4/zones?name=example.test":
                status, body = 200, {"success": True, "errors": [], "result": [{"id": "z1", "name": "example.test"}]}
            elif self.path.startswith("/client/v4/zones?name="):
                status, body = 200, {"success": True, "errors": [], "result": []}
            elif self.path.startswith("/client/v4/zones/z1/origin_tls_client_auth/edge_identity"):
                status, body = 200, {"success": True, "errors": [], "result": identity}
            else:
                status, body = 404, {"success": False, "errors": [{"code": 7003, "message": "no route"}]}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    for port in _serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler)):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ORIGINLOCK_API_URL", raising=False)
    monkeypatch.delenv("ORIGINLOCK_API_TOKEN", raising=False)
    monkeypatch.setenv("ORIGINLOCK_DATA_DIR", str(tmp_path / "no-data"))  # no admin-token file to find


def test_check_locked_with_local_key(
    pki: Pki, locked_origin: int, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        [
            "origin",
            "check",
            f"https://127.0.0.1:{locked_origin}/",
            "--hostname",
            HOST,
            "--client-cert",
            str(pki.dir / "edge.pem"),
            "--client-key",
            str(pki.dir / "edge.key"),
            "--api-url",
            api,
            "--token",
            TOKEN,
            "--json",
        ],
        capsys,
    )
    report = json.loads(out)
    assert code == 0 and report["verdict"] == "LOCKED"
    assert report["edge_source"] == "zone" and report["edge_certificate_id"] == "zc1"
    # TLS 1.3: the server's rejection reaches us as an alert, or as a close, depending on timing.
    assert [p["outcome"] for p in report["probes"]][2] == "accepted"
    assert {p["outcome"] for p in report["probes"][:2]} <= {"refused_tls", "closed"}


def test_check_without_control_plane_says_so(locked_origin: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["origin", "check", f"https://127.0.0.1:{locked_origin}/", "--hostname", HOST], capsys)
    assert code == 0 and out.startswith("LOCKED")
    assert "not tested" in out and "control plane not consulted" in out


def test_check_open_exits_1(open_origin: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["origin", "check", f"127.0.0.1:{open_origin}", "--hostname", HOST], capsys)
    assert code == 1 and out.startswith("OPEN") and "accepts TLS without a client certificate" in out


def test_check_usage_errors(pki: Pki, api: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["origin", "check", "http://127.0.0.1:1/"], capsys)
    assert code == 2 and "plain http://" in err
    code, _, err = _run(["origin", "check", "127.0.0.1:1", "--client-cert", str(pki.dir / "edge.pem")], capsys)
    assert code == 2 and "go together" in err
    code, _, err = _run(["origin", "check", "127.0.0.1:1", "--zone", "example.test"], capsys)
    assert code == 2 and "no API token" in err
    code, _, err = _run(
        ["origin", "check", "127.0.0.1:1", "--zone", "example.test", "--api-url", api, "--token", "nope"], capsys
    )
    assert code == 2 and "403" in err and "nope" not in err
    code, _, err = _run(
        [
            "origin",
            "check",
            "127.0.0.1:1",
            "--client-cert",
            str(pki.dir / "edge.pem"),
            "--client-key",
            str(pki.dir / "server.key"),
        ],
        capsys,
    )
    assert code == 2 and "could not be loaded" in err and "PRIVATE" not in err


def test_config_nginx_writes_bundle(pki: Pki, api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        [
            "origin",
            "config",
            "nginx",
            "--zone",
            "example.test",
            "--out-dir",
            str(tmp_path),
            "--api-url",
            api,
            "--token",
            TOKEN,
        ],
        capsys,
    )
    assert code == 0, err
    bundle = tmp_path / "example.test-edge-ca.pem"
    assert bundle.exists() and "CN=edge CA" in bundle.read_text()
    assert f"ssl_client_certificate {bundle};" in out
    assert out.index("ssl_verify_client optional;") < out.index("ssl_verify_client on;")
    assert "server_name example.test *.example.test;" in out
    assert "wrote" in err and "next:" in err


def test_config_json_and_local_ca(pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        [
            "origin",
            "config",
            "envoy",
            "--ca-file",
            str(pki.dir / "edge-ca.pem"),
            "--hostname",
            HOST,
            "--app",
            "http://127.0.0.1:8080",
            "--out-dir",
            str(tmp_path),
            "--json",
            "--phase",
            "enforce",
        ],
        capsys,
    )
    data = json.loads(out)
    assert code == 0 and data["source"] is None and list(data["phases"]) == ["enforce"]
    assert data["ca_certificates"][0]["subject"] == "CN=edge CA,O=originlock"


def test_config_errors(pki: Pki, api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        ["origin", "config", "haproxy", "--ca-file", str(pki.dir / "edge-ca.pem"), "--out-dir", str(tmp_path)], capsys
    )
    assert code == 2 and "--app" in err
    code, _, err = _run(["origin", "config", "nginx", "--out-dir", str(tmp_path)], capsys)
    assert code == 2 and "--zone is required" in err
    code, _, err = _run(
        ["origin", "config", "nginx", "--ca-file", str(pki.dir / "edge.pem"), "--out-dir", str(tmp_path)], capsys
    )
    assert code == 2 and "no CA certificate" in err


def test_check_default_api_unreachable_is_a_note(
    locked_origin: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A token file exists (as after `originlock serve`), but nothing listens on the default API URL here.
    (tmp_path / "admin-token").write_text("t\n")
    monkeypatch.setenv("ORIGINLOCK_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("originlock.originkit.api_client.DEFAULT_API_URL", "http://127.0.0.1:1")
    code, out, _ = _run(["origin", "check", f"https://127.0.0.1:{locked_origin}/", "--hostname", HOST], capsys)
    assert code == 0 and "control plane not consulted (cannot reach" in out
