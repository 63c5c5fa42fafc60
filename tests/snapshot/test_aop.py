"""DESIGN.md's six steps for choosing the client certificate, as a table over plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from originlock.snapshot.aop import Candidate, choose_client_cert
from originlock.snapshot.model import ClientCert, SslMode

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def cert(name: str, source: str = "zone", expires_in: int = 30) -> ClientCert:
    return ClientCert(name, source, name * 4, b"chain", b"key", NOW + timedelta(days=expires_in))  # type: ignore[arg-type]


HOST = Candidate(cert("host", "hostname"), "active", NOW - timedelta(days=1))
OLD_ZONE = Candidate(cert("zold"), "active", NOW - timedelta(days=5))
NEW_ZONE = Candidate(cert("znew"), "active", NOW - timedelta(days=1))
GLOBAL = cert("global", "global")


def choose(**overrides: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = dict(
        ssl_mode=SslMode.FULL,
        association_enabled=None,
        association_cert=None,
        zone_aop_enabled=True,
        zone_certs=[OLD_ZONE, NEW_ZONE],
        tls_client_auth=True,
        global_cert=GLOBAL,
        now=NOW,
    )
    args.update(overrides)
    return choose_client_cert(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", [SslMode.OFF, SslMode.FLEXIBLE])
def test_no_certificate_in_off_and_flexible(mode: SslMode) -> None:
    assert choose(ssl_mode=mode, association_enabled=True, association_cert=HOST).cert is None


@pytest.mark.parametrize("mode", [SslMode.FULL, SslMode.STRICT, SslMode.ORIGIN_PULL])
def test_hostname_wins(mode: SslMode) -> None:
    assert choose(ssl_mode=mode, association_enabled=True, association_cert=HOST).cert == HOST.cert


def test_enabled_false_sends_nothing_even_with_zone_and_global() -> None:
    assert choose(association_enabled=False, association_cert=HOST).cert is None


def test_voided_association_falls_back_to_newest_zone_cert() -> None:
    assert choose(association_enabled=None, association_cert=HOST).cert == NEW_ZONE.cert


def test_zone_disabled_falls_to_global_then_none() -> None:
    assert choose(zone_aop_enabled=False).cert == GLOBAL
    assert choose(zone_aop_enabled=False, tls_client_auth=False).cert is None
    assert choose(zone_certs=[], tls_client_auth=False).cert is None


def test_fail_closed_on_expired_chosen_certificate() -> None:
    expired = Candidate(cert("hexp", "hostname", expires_in=-1), "active", NOW)
    choice = choose(association_enabled=True, association_cert=expired)
    assert choice.cert is None and choice.error is not None and "expired" in choice.error
    newest_expired = Candidate(cert("zexp", expires_in=-1), "active", NOW)
    choice = choose(zone_certs=[OLD_ZONE, newest_expired])
    # Never the older zone certificate nor the global one: fail closed.
    assert choice.cert is None and choice.error is not None


def test_inactive_zone_certs_are_skipped() -> None:
    pending = Candidate(cert("zpend"), "pending_deletion", NOW)
    assert choose(zone_certs=[OLD_ZONE, pending]).cert == OLD_ZONE.cert


def test_client_cert_repr_hides_key() -> None:
    assert "key" not in repr(cert("x")).replace("ClientCert", "")


def test_fips_zone_never_gets_the_global_certificate() -> None:
    choice = choose(zone_aop_enabled=False, fips=True)
    assert choice.cert is None and choice.error is not None and "FIPS" in choice.error
    # A custom certificate is still used: FIPS only removes the shared one.
    assert choose(fips=True).cert == NEW_ZONE.cert


@pytest.mark.parametrize(
    ("overrides", "step", "words"),
    [
        ({"ssl_mode": SslMode.FLEXIBLE}, 1, "SSL mode flexible"),
        ({"association_enabled": True, "association_cert": HOST}, 2, "association is enabled"),
        ({"association_enabled": False}, 3, "association is disabled"),
        ({"association_enabled": None}, 4, "zone-level AOP is on"),
        ({"association_enabled": None, "zone_aop_enabled": False}, 5, "tls_client_auth is on"),
        ({"association_enabled": None, "zone_aop_enabled": False, "tls_client_auth": False}, 6, "no AOP level"),
    ],
)
def test_each_choice_names_its_step(overrides: dict[str, object], step: int, words: str) -> None:
    """The dashboard shows the step and its sentence: they come from the function that decides."""
    choice = choose(**overrides)
    assert choice.step == step and words in choice.reason
