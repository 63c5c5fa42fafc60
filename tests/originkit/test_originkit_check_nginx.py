"""The checker against real nginx origins in each state (issue 4 acceptance): open, locked to the
origin-pull CA, locked to a customer CA, locked but rejecting the edge's certificate, and one that asks for
any certificate without checking its CA."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ok_servers import nginx
from okhelpers import Pki, free_port

from originlock.originkit.check import check_origin
from originlock.originkit.report import CheckReport, Outcome, ProbeKind, Verdict
from originlock.originkit.snippets import SnippetOptions, render

pytestmark = pytest.mark.slow
HOST = "app.example.test"


def _block(pki: Pki, port: int, ca: str, phase: str, extra: str = "") -> str:
    opts = SnippetOptions(
        server_names=(HOST,),
        server_cert_path=str(pki.path("server.pem")),
        server_key_path=str(pki.path("server.key")),
        ca_bundle_path=str(pki.path(ca)),
        listen_port=port,
    )
    text = render("nginx", opts, phase)  # type: ignore[arg-type]
    text = text.replace(f"listen {port} ssl", f"listen 127.0.0.1:{port} ssl")
    return text.replace("    # ... your existing locations ...\n", extra)


@pytest.fixture(scope="module")
def origins(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    ports = {name: free_port() for name in ("open", "global", "zone", "any_cert", "plain")}
    blocks = [
        f"server {{ listen 127.0.0.1:{ports['open']} ssl; ssl_certificate {pki.path('server.pem')}; "
        f"ssl_certificate_key {pki.path('server.key')}; }}",
        _block(pki, ports["global"], "origin-pull-ca.pem", "enforce"),
        _block(pki, ports["zone"], "zone-ca.pem", "enforce"),
        # Asks for "a certificate" but never checks the CA: the classic optional_no_ca mistake.
        _block(pki, ports["any_cert"], "zone-ca.pem", "enforce")
        .replace("ssl_verify_client on;", "ssl_verify_client optional_no_ca;")
        .replace("}\n", '    if ($ssl_client_cert = "") { return 403; }\n}\n'),
        f"server {{ listen 127.0.0.1:{ports['plain']}; }}",
    ]
    with nginx(Path(tmp_path_factory.mktemp("nginx-check")), "\n".join(blocks), list(ports.values())):
        yield ports


def _check(port: int, edge: tuple[str, bytes] | None, **kw: object) -> CheckReport:
    return check_origin(f"https://127.0.0.1:{port}/", server_name=HOST, edge_client=edge, timeout=5, **kw)  # type: ignore[arg-type]


def test_open_origin(pki: Pki, origins: dict[str, int]) -> None:
    report = _check(origins["open"], pki.client(pki.global_edge, pki.origin_pull_ca))
    assert report.verdict is Verdict.OPEN
    assert "accepts TLS without a client certificate" in report.reasons[0]
    assert report.probes[0].outcome is Outcome.ACCEPTED and report.probes[0].status == 200


def test_locked_to_origin_pull_ca(pki: Pki, origins: dict[str, int]) -> None:
    report = _check(origins["global"], pki.client(pki.global_edge, pki.origin_pull_ca))
    assert report.verdict is Verdict.LOCKED, report.to_dict()
    no_cert, stranger, edge = report.probes
    assert no_cert.outcome is Outcome.REFUSED_HTTP and "No required SSL certificate was sent" in no_cert.detail
    assert stranger.outcome is Outcome.REFUSED_HTTP
    assert edge.outcome is Outcome.ACCEPTED and edge.status == 200
    assert (
        report.origin_certificate_sha256
        == pki.server.cert.fingerprint(
            __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()
        ).hex()
    )


def test_locked_to_custom_ca(pki: Pki, origins: dict[str, int]) -> None:
    report = _check(origins["zone"], pki.client(pki.zone_edge, pki.zone_ca))
    assert report.verdict is Verdict.LOCKED


def test_locked_but_rejects_the_edge(pki: Pki, origins: dict[str, int]) -> None:
    # The origin trusts the customer CA while the edge still presents the shared global certificate.
    report = _check(origins["zone"], pki.client(pki.global_edge, pki.origin_pull_ca))
    assert report.verdict is Verdict.MISCONFIGURED
    assert report.reasons[0].startswith("rejects the edge's own certificate")


def test_accepts_any_certificate(pki: Pki, origins: dict[str, int]) -> None:
    report = _check(origins["any_cert"], pki.client(pki.zone_edge, pki.zone_ca))
    assert report.verdict is Verdict.OPEN
    assert report.reasons[0].startswith("accepts any certificate")
    assert report.probes[1].outcome is Outcome.ACCEPTED


def test_edge_probe_not_run_is_said(origins: dict[str, int]) -> None:
    report = _check(origins["global"], None)
    assert report.verdict is Verdict.LOCKED
    assert report.probes[2].outcome is Outcome.NOT_RUN
    assert any("not tested" in note for note in report.notes)
    assert report.to_dict()["probes"][2]["outcome"] == "not_run"


def test_edge_without_certificate_is_misconfigured(origins: dict[str, int]) -> None:
    report = _check(origins["global"], None, edge_source="none")
    assert report.verdict is Verdict.MISCONFIGURED
    assert "edge presents none" in report.reasons[0]


def test_plain_http_port_and_closed_port(origins: dict[str, int]) -> None:
    report = _check(origins["plain"], None)
    assert report.verdict is Verdict.UNREACHABLE
    assert "does not speak TLS" in report.reasons[0]
    report = _check(free_port(), None)
    assert report.verdict is Verdict.UNREACHABLE
    assert report.probes[0].outcome is Outcome.ERROR


def test_unrelated_probe_copies_edge_subject(pki: Pki, origins: dict[str, int]) -> None:
    report = _check(
        origins["global"],
        pki.client(pki.global_edge, pki.origin_pull_ca),
        edge_certificate_pem=pki.global_edge.cert_pem,
    )
    stranger = next(p for p in report.probes if p.kind is ProbeKind.UNRELATED_CA)
    assert stranger.client_subject is not None and "CN=origin-pull.originlock.test" in stranger.client_subject


class _FakeEdge(BaseHTTPRequestHandler):
    """Failure injection: an edge whose origin connection fails the handshake answers 525 (spec §7)."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        status = 525 if self.headers.get("Host") == HOST else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_edge_probe_through_the_edge(origins: dict[str, int]) -> None:
    edge = ThreadingHTTPServer(("127.0.0.1", 0), _FakeEdge)
    thread = threading.Thread(target=edge.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        report = _check(origins["global"], None, via_edge=f"http://127.0.0.1:{edge.server_address[1]}/")
    finally:
        edge.shutdown()
        edge.server_close()
        thread.join(timeout=5)
    assert report.verdict is Verdict.MISCONFIGURED
    assert report.probes[2].via == "edge" and report.probes[2].status == 525
    assert "fail with 525" in report.reasons[0]
