"""The deployment's own CAs, created on first start and shared by every node through the store.

- ``origin-pull``: signs the shared client leaf the edge presents for global AOP (``tls_client_auth``).
- ``edge``: issues visitor-facing certificates for hostnames with no uploaded edge certificate.
- ``origin``: issues origin server certificates that the edge trusts in Full (strict).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from originlock.store import schema
from originlock.store.db import now_iso
from originlock.store.sealing import KeySealer
from originlock.tls.certs import load_certificates, load_private_key
from originlock.tls.issue import Issued, issue_ca, issue_leaf

__all__ = ["CA_NAMES", "DeploymentCas", "ensure_pki", "load_pki"]

CA_NAMES = ("origin-pull", "edge", "origin")
#: CAs live ten years (Cloudflare's origin-pull CA: 2019-10-10 to 2029-11-01); the shared leaf two.
CA_DAYS = 3650
LEAF_DAYS = 730


@dataclass(frozen=True)
class DeploymentCas:
    origin_pull_ca: Issued
    origin_pull_leaf: Issued
    edge_ca: Issued
    origin_ca: Issued


def _put(conn: Connection, sealer: KeySealer, name: str, issued: Issued) -> None:
    conn.execute(
        insert(schema.pki).values(
            name=name,
            cert_pem=issued.cert_pem,
            key_sealed=sealer.seal(issued.key_pem, f"pki:{name}"),
            created_on=now_iso(),
        )
    )


def ensure_pki(conn: Connection, sealer: KeySealer, now: datetime) -> bool:
    """Create the CAs and the shared leaf unless they exist; returns True when it created them."""
    if conn.execute(select(schema.pki.c.name)).first() is not None:
        return False
    origin_pull = issue_ca("originlock origin-pull CA", now=now, days=CA_DAYS)
    leaf = issue_leaf(origin_pull, "originlock-edge", now=now, days=LEAF_DAYS, organization="originlock")
    _put(conn, sealer, "origin-pull-ca", origin_pull)
    _put(conn, sealer, "origin-pull-leaf", leaf)
    _put(conn, sealer, "edge-ca", issue_ca("originlock edge CA", now=now, days=CA_DAYS, path_length=0))
    _put(conn, sealer, "origin-ca", issue_ca("originlock origin CA", now=now, days=CA_DAYS, path_length=0))
    return True


def load_pki(conn: Connection, sealer: KeySealer) -> DeploymentCas:
    items: dict[str, Issued] = {}
    # The four deployment CAs only: per-zone rotation CAs live in the same table, and unsealing them all
    # for every snapshot would cost a key load per zone.
    names = ("origin-pull-ca", "origin-pull-leaf", "edge-ca", "origin-ca")
    for row in conn.execute(select(schema.pki).where(schema.pki.c.name.in_(names))):
        key = load_private_key(sealer.open(bytes(row.key_sealed), f"pki:{row.name}"))
        items[row.name] = Issued(load_certificates(row.cert_pem)[0], key)
    return DeploymentCas(items["origin-pull-ca"], items["origin-pull-leaf"], items["edge-ca"], items["origin-ca"])


def public_pem(conn: Connection, name: str) -> str | None:
    """The public certificate of CA ``name`` (``origin-pull``, ``edge`` or ``origin``)."""
    return conn.execute(select(schema.pki.c.cert_pem).where(schema.pki.c.name == f"{name}-ca")).scalar_one_or_none()
