"""The HTTP EdgeMaterial provider against a stand-in of the control plane's two endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from okhelpers import Pki, StubControlPlane

from originlock.originkit.api_client import DEFAULT_API_URL, ApiEdgeMaterial, ControlPlaneError, parse_identity

TOKEN = "s3cret-token-value"


@pytest.fixture()
def api(pki: Pki) -> StubControlPlane:
    identity = {
        "source": "hostname",
        "certificate_id": "c1",
        "certificate": pki.zone_edge.cert_pem,
        "ca_bundle": pki.zone_ca.cert_pem + pki.origin_pull_ca.cert_pem,
    }
    zone_wide = {
        "source": "global",
        "certificate_id": None,
        "certificate": pki.global_edge.cert_pem,
        "ca_bundle": pki.origin_pull_ca.cert_pem,
    }
    return StubControlPlane(
        TOKEN, {"example.test": "z1"}, {("z1", "app.example.test"): identity, ("z1", None): zone_wide}
    )


def test_hostname_identity_finds_its_zone(api: StubControlPlane, pki: Pki) -> None:
    with api:
        material = ApiEdgeMaterial(api.url, TOKEN)
        got = material.edge_identity(zone=None, hostname="app.example.test")
        assert got.source == "hostname" and got.certificate_id == "c1" and got.presents_certificate
        assert got.certificate_pem == pki.zone_edge.cert_pem
        zone = material.edge_identity(zone="example.test", hostname=None)
        assert zone.source == "global" and zone.certificate_id is None
        none = material.edge_identity(zone="example.test", hostname="other.example.test")
        assert none.source == "none" and not none.presents_certificate
    paths = [p for p, _ in api.seen]
    assert "/client/v4/zones?name=app.example.test" in paths and "/client/v4/zones?name=example.test" in paths
    assert "/client/v4/zones/z1/origin_tls_client_auth/edge_identity?hostname=app.example.test" in paths
    assert all(auth == f"Bearer {TOKEN}" for _, auth in api.seen)


def test_errors_say_what_to_do_and_hide_the_token(api: StubControlPlane) -> None:
    with api:
        with pytest.raises(ControlPlaneError) as info:
            ApiEdgeMaterial(api.url + "/client/v4", "wrong").edge_identity(zone="example.test", hostname=None)
        assert "403" in str(info.value) and "Invalid access token" in str(info.value) and "--token" in str(info.value)
        with pytest.raises(LookupError, match="not found"):
            ApiEdgeMaterial(api.url, TOKEN).edge_identity(zone="nope.test", hostname=None)
        with pytest.raises(LookupError, match="no zone contains"):
            ApiEdgeMaterial(api.url, TOKEN).edge_identity(zone=None, hostname="a.nope.test")
    with pytest.raises(ControlPlaneError, match="cannot reach"):
        ApiEdgeMaterial(api.url, TOKEN, timeout=2).zone_id("example.test")
    assert TOKEN not in repr(ApiEdgeMaterial(api.url, TOKEN))


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ORIGINLOCK_API_URL", raising=False)
    monkeypatch.delenv("ORIGINLOCK_API_TOKEN", raising=False)
    monkeypatch.setenv("ORIGINLOCK_DATA_DIR", str(tmp_path))
    with pytest.raises(ControlPlaneError, match="--token"):
        ApiEdgeMaterial.from_env()
    (tmp_path / "admin-token").write_text("from-file\n")  # what `originlock serve` leaves behind
    got = ApiEdgeMaterial.from_env()
    assert (got.api_url, got.token) == (DEFAULT_API_URL, "from-file")
    monkeypatch.setenv("ORIGINLOCK_API_URL", "http://x")
    monkeypatch.setenv("ORIGINLOCK_API_TOKEN", "t")
    assert (ApiEdgeMaterial.from_env().api_url, ApiEdgeMaterial.from_env().token) == ("http://x", "t")
    assert ApiEdgeMaterial.from_env("http://flag", "f").api_url == "http://flag"


def test_zone_id_passthrough() -> None:
    assert ApiEdgeMaterial("http://unused", "t").zone_id("0123456789abcdef0123456789abcdef").startswith("0123")


def test_malformed_identity() -> None:
    with pytest.raises(ControlPlaneError):
        parse_identity({"source": "everywhere"})
