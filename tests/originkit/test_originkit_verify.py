"""verify_edge_cert (chain + per-hostname pins) and the forwarded-certificate header formats."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from okhelpers import NOW, Pki

from originlock.originkit.forwarded import parse_pem_header, parse_xfcc
from originlock.originkit.gate import EdgeGate, ForwardedCert
from originlock.originkit.verify import EdgeTrust, EdgeVerificationError, verify_edge_cert
from originlock.tls.certs import spki_sha256
from originlock.tls.issue import issue_ca, issue_leaf


def test_chain_to_anchor(pki: Pki) -> None:
    trust = EdgeTrust.from_pem(pki.origin_pull_ca.cert_pem)
    ok = verify_edge_cert(trust, pki.global_edge.cert_pem, now=NOW)
    assert ok.spki_sha256 == spki_sha256(pki.global_edge.cert) and not ok.pinned and len(ok.chain) == 2
    with pytest.raises(EdgeVerificationError, match="does not chain"):
        verify_edge_cert(trust, pki.stranger.cert, now=NOW)
    with pytest.raises(EdgeVerificationError, match="does not chain"):
        verify_edge_cert(trust, pki.global_edge.cert, now=NOW + timedelta(days=4000))


def test_intermediate_from_peer_or_config(pki: Pki) -> None:
    inter = issue_ca("edge intermediate", now=NOW, parent=pki.origin_pull_ca, path_length=0)
    leaf = issue_leaf(inter, "edge via intermediate", now=NOW)
    trust = EdgeTrust.from_pem(pki.origin_pull_ca.cert_pem)
    assert len(verify_edge_cert(trust, leaf.cert, [inter.cert], now=NOW).chain) == 3
    with pytest.raises(EdgeVerificationError):
        verify_edge_cert(trust, leaf.cert, now=NOW)  # Python < 3.13 servers only give the leaf...
    configured = EdgeTrust(anchors=trust.anchors, intermediates=(inter.cert,))
    verify_edge_cert(configured, leaf.cert, now=NOW)  # ...so intermediates can be configured


def test_pins_close_the_shared_certificate_hole(pki: Pki) -> None:
    # Both CAs are trusted (a shared origin), but app.example.test is bound to its own certificate.
    pin = spki_sha256(pki.zone_edge.cert)
    trust = EdgeTrust.from_pem(
        pki.origin_pull_ca.cert_pem + pki.zone_ca.cert_pem, pins={"App.Example.Test": {pin.upper()}}
    )
    assert verify_edge_cert(trust, pki.zone_edge.cert, hostname="app.example.test:443", now=NOW).pinned
    with pytest.raises(EdgeVerificationError, match="not the one bound to host"):
        verify_edge_cert(trust, pki.global_edge.cert, hostname="app.example.test", now=NOW)
    assert not verify_edge_cert(trust, pki.global_edge.cert, hostname="other.test", now=NOW).pinned
    strict = EdgeTrust(anchors=trust.anchors, pins=trust.pins, require_pin=True)
    with pytest.raises(EdgeVerificationError, match="no certificate pin"):
        verify_edge_cert(strict, pki.global_edge.cert, hostname="other.test", now=NOW)


def test_wildcard_pins(pki: Pki) -> None:
    trust = EdgeTrust.from_pem(pki.zone_ca.cert_pem, pins={"*.example.test": {spki_sha256(pki.zone_edge.cert)}})
    assert trust.pins_for("a.example.test") is not None
    assert trust.pins_for("a.b.example.test") is None and trust.pins_for("[::1]:8443") is None


def test_edge_trust_needs_a_ca(pki: Pki) -> None:
    with pytest.raises(ValueError):
        EdgeTrust.from_pem(pki.global_edge.cert_pem)


def test_xfcc(pki: Pki) -> None:
    cert = quote(pki.zone_edge.cert_pem, safe="")
    header = (
        f'By=spiffe://a;Hash=abc;Cert="{quote(pki.stranger.cert_pem, safe="")}";Subject="CN=x",'
        f'By=spiffe://b;Hash=def;Cert="{cert}";Subject="CN=edge, O=Example \\"Inc\\""'
    )
    certs = parse_xfcc(header)
    assert certs == [pki.zone_edge.cert]  # the last element: the one our own proxy added
    chain = parse_xfcc(f"Chain={quote(pki.zone_edge.cert_pem + pki.zone_ca.cert_pem, safe='')}")
    assert chain == [pki.zone_edge.cert, pki.zone_ca.cert]
    for bad in ("garbage", "By=x;Hash=y", 'Cert="not%20a%20cert"'):
        with pytest.raises(EdgeVerificationError):
            parse_xfcc(bad)


def test_pem_header_forms(pki: Pki) -> None:
    pem = pki.zone_edge.cert_pem
    body = "".join(pem.strip().splitlines()[1:-1])
    assert parse_pem_header(quote(pem)) == [pki.zone_edge.cert]
    assert parse_pem_header(pem.replace("\n", " ")) == [pki.zone_edge.cert]
    assert parse_pem_header(body) == [pki.zone_edge.cert]
    with pytest.raises(EdgeVerificationError):
        parse_pem_header("!!!")


def test_gate_forwarded_mode_is_explicit(pki: Pki) -> None:
    trust = EdgeTrust.from_pem(pki.zone_ca.cert_pem)
    xfcc = {"x-forwarded-client-cert": f'Cert="{quote(pki.zone_edge.cert_pem, safe="")}"'}
    plain = EdgeGate(trust=trust, clock=lambda: NOW)
    with pytest.raises(EdgeVerificationError, match="no client certificate"):
        plain.admit(peer_chain=None, host="a", headers=xfcc)  # the header alone is ignored by default
    forwarded = EdgeGate(trust=trust, forwarded=ForwardedCert(), clock=lambda: NOW)
    assert forwarded.admit(peer_chain=None, host="a", headers=xfcc).subject.endswith("CN=edge.example.test")
    with pytest.raises(EdgeVerificationError, match="no forwarded"):
        forwarded.admit(peer_chain=None, host="a", headers={})
