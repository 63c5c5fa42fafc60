"""Origin-facing client contexts: strict ones check what ``ssl.create_default_context()`` checks, and none
writes TLS secrets to a key log file."""

from __future__ import annotations

import ssl

import pytest

from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.tls import OriginTlsContexts
from originlock.tls.direct import DirectSSLContext


def test_strict_contexts_verify_like_the_default_context() -> None:
    ctx = OriginTlsContexts().for_peer(OriginPeer("192.0.2.1", 443, True, "a.test", VerifyMode.STRICT))
    default = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    assert isinstance(ctx, DirectSSLContext)
    assert (ctx.verify_mode, ctx.check_hostname, ctx.verify_flags) == (
        default.verify_mode,
        default.check_hostname,
        default.verify_flags,
    )
    assert ctx.cert_store_stats()["x509_ca"] == default.cert_store_stats()["x509_ca"]  # the system store


def test_full_mode_contexts_verify_nothing() -> None:
    ctx = OriginTlsContexts().for_peer(OriginPeer("192.0.2.1", 443, True, "a.test", VerifyMode.NONE))
    assert (ctx.verify_mode, ctx.check_hostname) == (ssl.CERT_NONE, False)


def test_sslkeylogfile_is_not_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("SSLKEYLOGFILE", f"{tmp_path}/keys.log")
    for verify in VerifyMode:
        ctx = OriginTlsContexts().for_peer(OriginPeer("192.0.2.1", 443, True, "a.test", verify))
        assert ctx.keylog_filename is None


def test_each_key_offers_its_own_last_connection_and_nothing_once_forgotten() -> None:
    """The last key's session is found by identity (origin/tls.py); every removal forgets that shortcut."""
    contexts = OriginTlsContexts(max_contexts=2)
    a = OriginPeer("192.0.2.1", 443, True, "a.test", VerifyMode.NONE)
    b = OriginPeer("192.0.2.2", 443, True, "b.test", VerifyMode.NONE)
    ctx = contexts.for_peer(a)
    assert contexts.for_peer(b) is ctx  # one profile, one context

    def connection(peer: OriginPeer) -> ssl.SSLObject:
        return ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=peer.sni)

    def offered(peer: OriginPeer) -> ssl.SSLObject | None:
        offer = contexts.offer_session(peer, ctx)
        ctx.withdraw(offer)
        return offer.resume_from

    assert offered(a) is None
    first_a = connection(a)
    contexts.remember(a, ctx, first_a)
    assert offered(a) is first_a and offered(b) is None
    second_a, first_b = connection(a), connection(b)
    contexts.remember(a, ctx, second_a)  # in place: the key's entry keeps its age
    contexts.remember(b, ctx, first_b)
    assert (offered(a), offered(b)) == (second_a, first_b)
    contexts.forget_sessions(lambda key: key.host != "192.0.2.2")
    assert (offered(a), offered(b)) == (second_a, None)
    contexts.remember(b, ctx, first_b)
    c = OriginPeer("192.0.2.3", 443, True, "c.test", VerifyMode.NONE)
    contexts.remember(c, ctx, connection(c))  # a third key: the oldest entry (a's) goes
    assert offered(a) is None and offered(b) is first_b
