"""What the edge presents to an origin, as the origin kit asks for it: source, certificate and CA bundle.

Uses the same precedence as the snapshot (``snapshot/aop.py``) without unsealing any key: the answer
is public material only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection, select

from originlock.snapshot.aop import Candidate, Choice, choose_client_cert
from originlock.snapshot.model import ClientCert, SslMode
from originlock.store import schema
from originlock.store.compile import load_candidates
from originlock.store.fips import zone_is_fips
from originlock.store.pki import public_pem
from originlock.store.settings import AOP_ZONE_ENABLED, zone_settings_map
from originlock.store.zones import get_zone
from originlock.tls.certs import load_certificates

__all__ = ["EdgeIdentity", "edge_choice", "edge_identity"]


@dataclass(frozen=True)
class EdgeIdentity:
    source: str
    certificate_id: str | None
    certificate: str | None
    ca_bundle: str | None


def _issuers(chain_pem: str) -> list[str]:
    """The CA certificates uploaded after the leaf (the origin must trust the one that issued the leaf)."""
    return [c.public_bytes(serialization.Encoding.PEM).decode() for c in load_certificates(chain_pem)[1:]]


@dataclass(frozen=True)
class _Inputs:
    choice: Choice
    zone_candidates: list[Candidate]
    chains: dict[str, str]
    leaf_pem: str
    origin_pull: str


def _choose(
    conn: Connection, zone_id: str, hostname: str | None, now: datetime, ssl_mode: SslMode, deployment_fips: bool
) -> _Inputs:
    get_zone(conn, zone_id)
    settings = zone_settings_map(conn, zone_id)
    # No sealer: this answer is public material only, no key is ever unsealed for it.
    by_zone, hostname_candidates = load_candidates(conn, None, zone_id)
    zone_candidates = by_zone.get(zone_id, [])
    chains = {c.cert.id: c.cert.chain_pem.decode() for c in [*zone_candidates, *hostname_candidates.values()]}
    assoc = None
    if hostname is not None:
        assoc = conn.execute(
            select(schema.hostname_associations).where(
                schema.hostname_associations.c.zone_id == zone_id,
                schema.hostname_associations.c.hostname == hostname.strip().rstrip(".").lower(),
            )
        ).first()
    origin_pull = public_pem(conn, "origin-pull") or ""
    leaf_pem = conn.execute(select(schema.pki.c.cert_pem).where(schema.pki.c.name == "origin-pull-leaf")).scalar_one()
    leaf_expiry = load_certificates(leaf_pem)[0].not_valid_after_utc
    global_cert = ClientCert("global", "global", "", leaf_pem.encode(), b"", leaf_expiry)
    choice = choose_client_cert(
        ssl_mode=ssl_mode,
        association_enabled=assoc.enabled if assoc is not None else None,
        association_cert=hostname_candidates.get(assoc.cert_id) if assoc is not None else None,
        zone_aop_enabled=bool(settings[AOP_ZONE_ENABLED]),
        zone_certs=zone_candidates,
        tls_client_auth=settings["tls_client_auth"] == "on",
        global_cert=global_cert,
        now=now,
        fips=zone_is_fips(settings, deployment_fips),
    )
    return _Inputs(choice, zone_candidates, chains, leaf_pem, origin_pull)


def edge_choice(
    conn: Connection, zone_id: str, hostname: str, now: datetime, ssl_mode: SslMode, *, deployment_fips: bool = False
) -> Choice:
    """The precedence's answer for ``hostname`` in its zone's SSL mode, with the step that decided it."""
    return _choose(conn, zone_id, hostname, now, ssl_mode, deployment_fips).choice


def edge_identity(
    conn: Connection, zone_id: str, hostname: str | None, now: datetime, *, deployment_fips: bool = False
) -> EdgeIdentity:
    # Asked about TLS pulls: whatever the zone's mode, say what a TLS pull would present.
    inputs = _choose(conn, zone_id, hostname, now, SslMode.FULL, deployment_fips)
    choice, zone_candidates, chains = inputs.choice, inputs.zone_candidates, inputs.chains
    leaf_pem, origin_pull = inputs.leaf_pem, inputs.origin_pull
    cert = choice.cert
    if cert is None:
        return EdgeIdentity("none", None, None, None)
    if cert.source == "global":
        return EdgeIdentity("global", None, leaf_pem, origin_pull)
    bundle: list[str] = []
    if cert.source == "zone":
        # During a rotation overlap the origin must trust every active zone certificate's CA.
        for candidate in zone_candidates:
            if candidate.status == "active":
                bundle += [pem for pem in _issuers(chains[candidate.cert.id]) if pem not in bundle]
    else:
        bundle = _issuers(chains[cert.id])
    return EdgeIdentity(cert.source, cert.id, chains[cert.id], "".join(bundle) or None)
