"""A hostname's on-demand edge certificate is served from the cache until a day before it expires, then
re-issued; the edge CA is read (and its identity hashed) once, not at every handshake."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import replace
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


def _sni_object() -> ssl.SSLObject:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())


def test_the_sni_callback_remembers_a_hostnames_answer_until_the_next_tick() -> None:
    """A returning server name is answered without the route look-up and the context cache (and their
    clock read); the answer follows a renewal within a tick, and a new snapshot at once."""
    pki = TestPki()
    snapshots = [make_snapshot(pki, make_route("a.example.test"))]
    now = [pki.now]
    tls = VisitorTls(lambda: snapshots[-1], lambda: now[0])
    obj = _sni_object()
    assert tls._on_sni(obj, "A.example.test.", tls.context) is None
    first = obj.context
    assert first is tls._context_for("a.example.test", snapshots[-1])
    now[0] = pki.now + timedelta(days=EDGE_CERT_DAYS - 1, hours=1)  # renewal due
    tls._on_sni(obj, "A.example.test.", tls.context)
    assert obj.context is first  # remembered: the clock is not read per handshake
    tls.tick()
    tls._on_sni(obj, "A.example.test.", tls.context)
    renewed = obj.context
    assert renewed is not first
    assert tls._on_sni(obj, "unknown.example.test", tls.context) is None
    assert "unknown.example.test" not in tls._answers  # names without a route are not remembered
    snapshots.append(make_snapshot(pki, replace(make_route("a.example.test"), http2=False), generation=2))
    tls._on_sni(obj, "A.example.test.", tls.context)
    assert obj.context is not renewed  # a new snapshot: answered again (here: another ALPN list)


def test_a_remembered_answer_still_enforces_the_minimum_tls_version() -> None:
    pki = TestPki()
    snapshot = make_snapshot(pki, make_route("a.example.test", min_tls_version="1.3"))
    tls = VisitorTls(lambda: snapshot, lambda: pki.now)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    obj = server.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
    versions = iter(["TLSv1.2", "TLSv1.2", "TLSv1.3"])
    probe = _VersionProbe(obj, versions)
    for _ in range(2):  # computed, then remembered
        assert tls._on_sni(probe, "a.example.test", tls.context) == ssl.ALERT_DESCRIPTION_PROTOCOL_VERSION  # type: ignore[arg-type]
    assert tls._on_sni(probe, "a.example.test", tls.context) is None  # type: ignore[arg-type]


class _VersionProbe:
    """An SSLObject stand-in whose negotiated version the test chooses."""

    def __init__(self, obj: ssl.SSLObject, versions: Iterator[str]) -> None:
        self.obj = obj
        self.versions = versions
        self.context = obj.context

    def version(self) -> str:
        return next(self.versions)


def test_tick_installs_the_ticket_key_of_a_new_period() -> None:
    from originlock.edge.ticket_keys import ROTATION_SECONDS, ticket_key

    pki = TestPki()
    snapshot = make_snapshot(pki, make_route("a.example.test"))
    wall = [10.5 * ROTATION_SECONDS]
    tls = VisitorTls(lambda: snapshot, lambda: pki.now, ticket_secret=b"s" * 32, wall_clock=lambda: wall[0])
    assert tls.tickets.installed() == ticket_key(b"s" * 32, 10)
    wall[0] += ROTATION_SECONDS
    tls._on_sni(_sni_object(), "a.example.test", tls.context)
    assert tls.tickets.installed() == ticket_key(b"s" * 32, 10)  # handshakes do not read the clock
    tls.tick()
    assert tls.tickets.installed() == ticket_key(b"s" * 32, 11)
