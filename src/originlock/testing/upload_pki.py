"""Throwaway private CA for control-plane tests: client leaves shaped as users upload them (and as the API refuses)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from originlock.tls.issue import Issued, KeyKind, issue_ca, issue_leaf, new_key

__all__ = ["UploadPki", "leaf_pems"]


def leaf_pems(leaf: Issued) -> tuple[str, str]:
    """(certificate PEM, private key PEM) as a user would paste them into the API."""
    return leaf.cert_pem, leaf.key_pem.decode()


@dataclass
class UploadPki:
    """A private CA, as a user following Cloudflare's OpenSSL recipe would have."""

    __test__ = False  # not a pytest class
    ca: Issued
    now: datetime

    @classmethod
    def create(cls, name: str = "test private CA", key: KeyKind = "ecdsa-p256") -> UploadPki:
        now = datetime.now(UTC)
        return cls(issue_ca(name, now=now, key=new_key(key)), now)

    def client(self, cn: str, *, days: int = 365, key: KeyKind = "ecdsa-p256") -> Issued:
        return issue_leaf(self.ca, cn, now=self.now, days=days, key=new_key(key))

    def expired_client(self, cn: str) -> Issued:
        return issue_leaf(
            self.ca, cn, now=self.now - timedelta(days=10), days=1, not_before=self.now - timedelta(days=20)
        )

    def server(self, cn: str, *, sans: tuple[str, ...] = ()) -> Issued:
        return issue_leaf(self.ca, cn, now=self.now, client=False, server=True, sans=sans or (cn,))
