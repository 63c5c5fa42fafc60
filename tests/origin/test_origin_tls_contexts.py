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
