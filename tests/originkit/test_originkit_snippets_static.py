"""Snippets for servers not installed here: structural checks, plus the server's own config check when its
binary exists (caddy validate, haproxy -c, envoy --mode validate; Traefik has no offline check)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from originlock.originkit.snippets import PHASES, SERVERS, SnippetOptions, render, render_both
from originlock.originkit.snippets import envoy as envoy_snippet
from originlock.testing.require import require_executable

OPTS = SnippetOptions(
    server_names=("app.example.test", "*.example.test"),
    server_cert_path="/etc/ssl/o.pem",
    server_key_path="/etc/ssl/o.key",
    ca_bundle_path="/etc/ssl/edge-ca.pem",
    listen_port=8443,
    app_url="http://127.0.0.1:8080",
)


def _balanced(text: str) -> bool:
    depth = 0
    for ch in re.sub(r"#[^\n]*", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("server", sorted(SERVERS))
@pytest.mark.parametrize("phase", PHASES)
def test_every_snippet_names_the_bundle_and_phase(server: str, phase: str) -> None:
    text = render(server, OPTS, phase)  # type: ignore[arg-type]
    assert "/etc/ssl/edge-ca.pem" in text and f"{phase} phase" in text
    assert "/etc/ssl/o.pem" in text


def test_caddy_structure() -> None:
    accept, enforce = (render("caddy", OPTS, p) for p in PHASES)
    assert "mode verify_if_given" in accept and "mode require_and_verify" in enforce
    assert _balanced(enforce) and "trusted_ca_cert_file /etc/ssl/edge-ca.pem" in enforce
    assert enforce.splitlines()[1].startswith("app.example.test:8443, *.example.test:8443 {")


def test_haproxy_structure() -> None:
    accept, enforce = (render("haproxy", OPTS, p) for p in PHASES)
    bind = next(line for line in enforce.splitlines() if line.strip().startswith("bind"))
    assert bind.split()[1:4] == [":8443", "ssl", "crt"] and bind.endswith("verify required")
    assert "verify optional" in accept and "server app 127.0.0.1:8080" in enforce
    with pytest.raises(ValueError, match="--app"):
        render("haproxy", SnippetOptions(("a.test",), "c", "k", "ca"), "enforce")


@pytest.mark.parametrize("phase", PHASES)
def test_envoy_structure(phase: str) -> None:
    doc = json.loads(render("envoy", OPTS, phase).split("\n", 1)[1])  # type: ignore[arg-type]
    assert doc == envoy_snippet.config(OPTS, phase)  # type: ignore[arg-type]
    listener = doc["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"]["port_value"] == 8443
    tls = listener["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is (phase == "enforce")
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == "/etc/ssl/edge-ca.pem"
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["forward_client_cert_details"] == "SANITIZE_SET"
    cluster = doc["static_resources"]["clusters"][0]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 8080}


@pytest.mark.parametrize("phase", PHASES)
def test_traefik_structure(phase: str) -> None:
    import yaml  # PyYAML, a test dependency: the structure is YAML

    doc = yaml.safe_load(render("traefik", OPTS, phase))  # type: ignore[arg-type]
    auth = doc["tls"]["options"]["originlock-aop"]["clientAuth"]
    assert auth["caFiles"] == ["/etc/ssl/edge-ca.pem"]
    assert auth["clientAuthType"] == ("VerifyClientCertIfGiven" if phase == "accept" else "RequireAndVerifyClientCert")
    router = doc["http"]["routers"]["originlock-origin"]
    assert router["tls"]["options"] == "originlock-aop"
    assert router["rule"] == "Host(`app.example.test`) || HostRegexp(`^[^.]+\\.example\\.test$`)"
    assert doc["http"]["services"][router["service"]]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:8080"}]


def test_render_both_and_unknown_server() -> None:
    both = render_both("nginx", OPTS)
    assert both.index("ssl_verify_client optional") < both.index("ssl_verify_client on")
    with pytest.raises(ValueError, match="choose one of"):
        render("iis", OPTS, "enforce")


def test_options_refuse_injection() -> None:
    with pytest.raises(ValueError):
        SnippetOptions(server_names=("a.test; evil",), server_cert_path="c", server_key_path="k", ca_bundle_path="ca")
    with pytest.raises(ValueError):
        SnippetOptions(server_names=(), server_cert_path="c", server_key_path="k", ca_bundle_path="ca")


def _real_files(tmp_path: Path) -> SnippetOptions:
    from okhelpers import make_pki

    pki = make_pki(tmp_path)
    combined = tmp_path / "combined.pem"  # HAProxy wants certificate and key together
    combined.write_bytes(pki.path("server.pem").read_bytes() + pki.path("server.key").read_bytes())
    return SnippetOptions(
        server_names=("app.example.test",),
        server_cert_path=str(combined),
        server_key_path=str(pki.path("server.key")),
        ca_bundle_path=str(pki.path("origin-pull-ca.pem")),
        listen_port=8443,
        app_url="http://127.0.0.1:8080",
    )


# Envoy and Traefik are not packaged for Debian, so their snippets get the structural checks above only.
@pytest.mark.parametrize(
    ("server", "command"),
    [
        ("caddy", ["caddy", "validate", "--adapter", "caddyfile", "--config"]),
        ("haproxy", ["haproxy", "-c", "-f"]),
    ],
)
def test_config_check_with_the_server_itself(server: str, command: list[str], tmp_path: Path) -> None:
    require_executable(command[0])
    opts = _real_files(tmp_path)
    for phase in PHASES:
        conf = tmp_path / f"{server}-{phase}.conf"
        conf.write_text(render(server, opts, phase))
        done = subprocess.run([*command, str(conf)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
