"""A hostname's on-demand edge certificate is served from the cache until a day before it expires, then
re-issued; the edge CA is read (and its identity hashed) once, not at every handshake."""

from __future__ import annotations

from datetime import timedelta

from originlock.edge.visitor_tls import EDGE_CERT_DAYS, VisitorTls
from originlock.testing.pki import TestPki, make_route, make_snapshot


def test_hostname_context_is_cached_until_a_day_before_expiry() -> None:
    pki = TestPki()
    snapshot = make_snapshot(pki, make_route("a.example.test"))
    now = [pki.now]
    tls = VisitorTls(lambda: snapshot, lambda: now[0])
    first = tls._context_for("a.example.test", snapshot)
    ca = tls._ca
    now[0] = pki.now + timedelta(days=EDGE_CERT_DAYS - 1, hours=-1)
    assert tls._context_for("a.example.test", snapshot) is first  # more than a day left
    assert tls._ca is ca  # the CA was not read again
    now[0] = pki.now + timedelta(days=EDGE_CERT_DAYS - 1, hours=1)
    renewed = tls._context_for("a.example.test", snapshot)
    assert renewed is not first  # less than a day left: a new certificate
    assert tls._context_for("a.example.test", snapshot) is renewed
    assert tls._context_for("a.example.test", snapshot, http2=False) is not renewed  # ALPN is part of the key
