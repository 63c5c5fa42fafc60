"""The nginx and Apache snippets, run for real: both phases, with curl as the client (issue 4 part 2).

"Through the edge" is represented by curl presenting the edge's client certificate; the edge itself is
tested end to end elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ok_servers import apache, nginx
from okhelpers import Pki, curl, free_port

from originlock.originkit.check import check_origin
from originlock.originkit.report import Outcome, Verdict
from originlock.originkit.snippets import Phase, SnippetOptions, render, write_ca_bundle

pytestmark = pytest.mark.slow
HOST = "app.example.test"


def _opts(pki: Pki, port: int, bundle: Path) -> SnippetOptions:
    return SnippetOptions(
        server_names=(HOST,),
        server_cert_path=str(pki.path("server.pem")),
        server_key_path=str(pki.path("server.key")),
        ca_bundle_path=str(bundle),
        listen_port=port,
    )


@pytest.fixture(scope="module")
def bundle(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Rotation overlap: the bundle holds the origin-pull CA and the customer CA.
    out = tmp_path_factory.mktemp("bundle")
    out.chmod(0o755)
    return write_ca_bundle(pki.origin_pull_ca.cert_pem + pki.zone_ca.cert_pem, out, "edge-ca.pem")


def _get(pki: Pki, port: int, who: str | None) -> tuple[int, str]:
    cert = key = None
    if who is not None:
        cert, key = pki.path(f"{who}.pem"), pki.path(f"{who}.key")
    return curl(
        f"https://{HOST}:{port}/", ca=pki.path("server-ca.pem"), cert=cert, key=key, resolve=f"{HOST}:{port}:127.0.0.1"
    )


@pytest.fixture(scope="module")
def nginx_ports(
    pki: Pki, bundle: Path, curl_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Phase, int]]:
    ports: dict[Phase, int] = {"accept": free_port(), "enforce": free_port()}
    blocks = "".join(
        render("nginx", _opts(pki, port, bundle), phase).replace(f"listen {port}", f"listen 127.0.0.1:{port}")
        for phase, port in ports.items()
    )
    with nginx(tmp_path_factory.mktemp("nginx-snippet"), blocks, list(ports.values())):
        yield ports


@pytest.fixture(scope="module")
def apache_ports(
    pki: Pki, bundle: Path, curl_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Phase, int]]:
    ports: dict[Phase, int] = {"accept": free_port(), "enforce": free_port()}
    vhosts = "".join(render("apache", _opts(pki, port, bundle), phase) for phase, port in ports.items())
    with apache(tmp_path_factory.mktemp("apache-snippet"), vhosts, list(ports.values())):
        yield ports


def test_nginx_enforce(pki: Pki, nginx_ports: dict[Phase, int]) -> None:
    port = nginx_ports["enforce"]
    assert _get(pki, port, None) == (0, "400")  # nginx: "No required SSL certificate was sent"
    assert _get(pki, port, "stranger") == (0, "400")
    assert _get(pki, port, "global-edge") == (0, "200")
    assert _get(pki, port, "zone-edge") == (0, "200")  # both CAs trusted during the overlap


def test_nginx_accept(pki: Pki, nginx_ports: dict[Phase, int]) -> None:
    port = nginx_ports["accept"]
    assert _get(pki, port, None) == (0, "200")
    assert _get(pki, port, "global-edge") == (0, "200")
    assert _get(pki, port, "stranger") == (0, "400")  # a certificate, when sent, is still verified


def test_apache_enforce(pki: Pki, apache_ports: dict[Phase, int]) -> None:
    port = apache_ports["enforce"]
    code, status = _get(pki, port, None)
    assert code != 0 and status in ("", "000")  # refused in the TLS layer: the edge would show 525
    code, status = _get(pki, port, "stranger")
    assert code != 0
    assert _get(pki, port, "global-edge") == (0, "200")
    assert _get(pki, port, "zone-edge") == (0, "200")


def test_apache_accept(pki: Pki, apache_ports: dict[Phase, int]) -> None:
    port = apache_ports["accept"]
    assert _get(pki, port, None) == (0, "200")
    assert _get(pki, port, "zone-edge") == (0, "200")


def test_checker_against_apache(pki: Pki, apache_ports: dict[Phase, int]) -> None:
    url = f"https://127.0.0.1:{apache_ports['enforce']}/"
    report = check_origin(url, server_name=HOST, edge_client=pki.client(pki.zone_edge, pki.zone_ca), timeout=5)
    assert report.verdict is Verdict.LOCKED, report.to_dict()
    assert report.probes[0].outcome in (Outcome.REFUSED_TLS, Outcome.CLOSED)  # refused in TLS, not HTTP
    report = check_origin(f"https://127.0.0.1:{apache_ports['accept']}/", server_name=HOST, timeout=5)
    assert report.verdict is Verdict.OPEN
