"""A throwaway PKI and snapshot builders for tests: CAs, server and client certificates, routes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from originlock.snapshot.model import ClientCert, DeploymentPki, Route, Snapshot, SslMode
from originlock.tls.issue import Issued, issue_ca, issue_leaf

__all__ = ["TestPki", "client_cert_from", "make_route", "make_snapshot"]


def client_cert_from(issued: Issued, ca: Issued, *, id: str, source: str = "zone") -> ClientCert:
    """A :class:`ClientCert` (chain = leaf + issuing CA) from an issued leaf."""
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    return ClientCert(
        id=id,
        source=source,  # type: ignore[arg-type]
        fingerprint=hashlib.sha256(der).hexdigest(),
        chain_pem=(issued.cert_pem + ca.cert_pem).encode(),
        key_pem=issued.key_pem,
        not_after=issued.cert.not_valid_after_utc,
    )


@dataclass
class TestPki:
    """The deployment CAs plus helpers to issue more; ``write(dir)`` puts PEM files for nginx/curl."""

    __test__ = False  # not a pytest test class

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.edge_ca = issue_ca("originlock test edge CA", now=self.now)
        self.origin_pull_ca = issue_ca("originlock test origin-pull CA", now=self.now)
        self.origin_ca = issue_ca("originlock test origin CA", now=self.now)
        self.global_leaf = issue_leaf(self.origin_pull_ca, "origin-pull.originlock.test", now=self.now)
        self.global_client = client_cert_from(self.global_leaf, self.origin_pull_ca, id="global", source="global")

    def client(
        self, common_name: str, *, ca: Issued | None = None, id: str | None = None, source: str = "zone"
    ) -> ClientCert:
        ca = ca or self.origin_pull_ca
        return client_cert_from(issue_leaf(ca, common_name, now=self.now), ca, id=id or common_name, source=source)

    def server(self, *names: str, ca: Issued | None = None) -> Issued:
        return issue_leaf(ca or self.origin_ca, names[0], now=self.now, client=False, server=True, sans=list(names))

    def deployment(self) -> DeploymentPki:
        return DeploymentPki(
            edge_ca_cert_pem=self.edge_ca.cert_pem.encode(),
            edge_ca_key_pem=self.edge_ca.key_pem,
            origin_ca_cert_pem=self.origin_ca.cert_pem.encode(),
            global_client=self.global_client,
        )

    @staticmethod
    def write(directory: Path, name: str, issued: Issued) -> tuple[Path, Path]:
        """Write ``name.pem`` and ``name.key`` (test material only) and return their paths."""
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        cert.write_text(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        key.chmod(0o600)
        return cert, key


def make_route(
    hostname: str,
    origin: str = "127.0.0.1",
    *,
    ssl_mode: SslMode = SslMode.FULL,
    client_cert: ClientCert | None = None,
    record_type: str = "A",
    always_use_https: bool = False,
    min_tls_version: str = "1.0",
    client_cert_error: str | None = None,
    zone: str = "example.test",
) -> Route:
    return Route(
        hostname=hostname,
        zone_id=hashlib.md5(zone.encode()).hexdigest(),
        zone_name=zone,
        origin=origin,
        record_type=record_type,  # type: ignore[arg-type]
        ssl_mode=ssl_mode,
        always_use_https=always_use_https,
        min_tls_version=min_tls_version,
        client_cert=client_cert,
        client_cert_error=client_cert_error,
    )


def make_snapshot(pki: TestPki, *routes: Route, generation: int = 1) -> Snapshot:
    return Snapshot(generation=generation, routes={r.hostname: r for r in routes}, pki=pki.deployment())
