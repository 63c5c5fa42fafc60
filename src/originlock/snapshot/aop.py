"""Which client certificate the edge presents to the origin: the six precedence steps of
docs/architecture.md ("Which client certificate the edge presents"), as a pure function.

Each answer also says which step decided it (``Choice.step``, ``Choice.reason``), so that what the
dashboard shows an operator is this function's own account, not a second copy of the rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from originlock.snapshot.model import ClientCert, SslMode

__all__ = ["GLOBAL_CERT_REFUSED_FIPS", "Candidate", "Choice", "choose_client_cert", "effective_status"]

#: Why a FIPS zone gets 525 instead of the shared certificate (it is not FIPS-suitable).
GLOBAL_CERT_REFUSED_FIPS = (
    "the zone's FIPS profile forbids the shared global certificate; upload a zone-level or per-hostname certificate"
)


@dataclass(frozen=True)
class Candidate:
    """A stored certificate that might be presented."""

    cert: ClientCert
    status: str
    uploaded_on: datetime


@dataclass(frozen=True)
class Choice:
    cert: ClientCert | None
    #: Why the chosen certificate cannot be used (then ``cert`` is None and the edge fails closed).
    error: str | None = None
    #: The precedence step (1-6) that decided, and that step in words.
    step: int = 0
    reason: str = ""


def effective_status(status: str, not_before: datetime | None, now: datetime) -> str:
    """The status the API reports and the precedence uses: an ``active`` certificate whose notBefore is
    still ahead is ``pending_deployment`` (Cloudflare's status for one not yet in service) until then."""
    if status == "active" and not_before is not None and not_before > now:
        return "pending_deployment"
    return status


def _usable(candidate: Candidate, now: datetime) -> str | None:
    if candidate.status == "active" and candidate.cert.not_before is not None and candidate.cert.not_before > now:
        return f"certificate {candidate.cert.id} is not valid before {candidate.cert.not_before:%Y-%m-%dT%H:%M:%SZ}"
    if candidate.status != "active":
        return f"certificate {candidate.cert.id} is {candidate.status}"
    if candidate.cert.not_after <= now:
        return f"certificate {candidate.cert.id} expired on {candidate.cert.not_after:%Y-%m-%dT%H:%M:%SZ}"
    return None


def choose_client_cert(
    *,
    ssl_mode: SslMode,
    association_enabled: bool | None,
    association_cert: Candidate | None,
    zone_aop_enabled: bool,
    zone_certs: Sequence[Candidate],
    tls_client_auth: bool,
    global_cert: ClientCert | None,
    now: datetime,
    fips: bool = False,
) -> Choice:
    """Apply the precedence for TLS pulls of one hostname.

    ``association_enabled`` is the hostname association's ``enabled``: True, False, or None when
    there is no association or it was voided.
    """
    if ssl_mode in (SslMode.OFF, SslMode.FLEXIBLE):
        return Choice(None, step=1, reason=f"SSL mode {ssl_mode.value}: the edge pulls over plain HTTP, no certificate")
    if association_enabled is True and association_cert is not None:
        problem = _usable(association_cert, now)
        why = "the hostname's association is enabled: its hostname certificate"
        return Choice(None, problem, 2, why) if problem else Choice(association_cert.cert, step=2, reason=why)
    if association_enabled is False:
        why = "the hostname's association is disabled: no certificate, whatever the zone and global settings"
        return Choice(None, step=3, reason=why)
    if zone_aop_enabled:
        # A certificate uploaded ahead of its notBefore is pending: the previous one stays in service.
        active = [c for c in zone_certs if effective_status(c.status, c.cert.not_before, now) == "active"]
        if active:
            newest = max(active, key=lambda c: (c.uploaded_on, c.cert.not_after))
            problem = _usable(newest, now)
            why = "zone-level AOP is on: the zone's most recently uploaded active certificate"
            return Choice(None, problem, 4, why) if problem else Choice(newest.cert, step=4, reason=why)
    if tls_client_auth and global_cert is not None:
        why = "tls_client_auth is on: the deployment's shared certificate (origin-pull CA)"
        if fips:
            return Choice(None, GLOBAL_CERT_REFUSED_FIPS, 5, why)
        return Choice(global_cert, step=5, reason=why)
    return Choice(None, step=6, reason="no AOP level is on for this hostname: no certificate")
