"""The FIPS profile, per zone or for the whole deployment (``serve --fips``).

An algorithm policy, not a validated module: uploads must use FIPS-approved algorithms, the shared
global certificate is never presented for the zone (a custom certificate is required, as Cloudflare's
docs say for FIPS), and edge-to-origin TLS is limited to approved suites.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, select

from originlock.store import schema
from originlock.store.errors import Invalid
from originlock.tls.certs import load_certificates
from originlock.tls.policy import fips_verdict

__all__ = ["FIPS_SETTING", "GLOBAL_CERT_REFUSED", "check_upload", "non_fips_certificates", "zone_is_fips"]

FIPS_SETTING = "fips"
GLOBAL_CERT_REFUSED = (
    "FIPS profile: this zone never presents the shared global certificate (it is not FIPS-suitable); "
    "upload a zone-level or per-hostname certificate, or requests that need it are answered with 525"
)


def zone_is_fips(settings: Mapping[str, object], deployment_fips: bool) -> bool:
    return deployment_fips or settings.get(FIPS_SETTING) == "on"


def check_upload(chain_pem: str) -> None:
    """Refuse a certificate outside FIPS-approved algorithms, saying which rule it breaks."""
    verdict = fips_verdict(load_certificates(chain_pem)[0])
    if not verdict.approved:
        raise Invalid("FIPS profile: " + "; ".join(verdict.reasons), 1419)


def non_fips_certificates(conn: Connection, zone_id: str) -> list[str]:
    """Ids of the zone's stored certificates (AOP and edge) that a FIPS profile would refuse."""
    found = []
    for table in (schema.aop_certs, schema.custom_certificates):
        for row in conn.execute(select(table.c.id, table.c.certificate).where(table.c.zone_id == zone_id)):
            if not fips_verdict(load_certificates(row.certificate)[0]).approved:
                found.append(row.id)
    return found
