"""The origin a request goes to, and what makes two origin connections interchangeable.

Pingora's ``HttpPeer`` hash is the model: two connections may serve each other's requests if and only if
every field of :meth:`OriginPeer.pool_key` is equal. The client certificate's SHA-256 fingerprint is its
identity *and* version, so a rotated certificate never reuses a connection (or TLS session) made with
the old one, and hostname B never rides on a connection authenticated as hostname A (performance.md
finding 1, where nginx 1.22 gets this wrong).

In strict modes the key's trust element also names the snapshot's revoked Origin CA certificates
(:attr:`OriginPeer.revocation`): a connection is checked against them once, after its handshake
(origin/connector.py), so a snapshot that revokes one more certificate must not reuse connections
verified before it. With the revocation id in the key it cannot: the new snapshot's peers ask for keys
no such connection was filed under.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NamedTuple

from originlock.cache import BoundedCache
from originlock.snapshot.model import ClientCert, DeploymentPki

__all__ = ["NO_REVOCATIONS", "OriginPeer", "PoolKey", "VerifyMode", "pool_trust", "strict_pool_trust", "trust_id"]


class VerifyMode(enum.Enum):
    #: Full: the origin certificate is "not validated in any way" (spec §6).
    NONE = "none"
    #: Full (strict) / origin_pull: chain to the system store or the origin CA, unexpired, name matches.
    STRICT = "strict"


class PoolKey(NamedTuple):
    """See :meth:`OriginPeer.pool_key`. A named tuple rather than a plain ``tuple[...]`` type: compiled,
    mypyc keeps a fixed-length tuple unboxed in C and builds a new tuple object at every use, where the
    pool wants the peer's one key object (hashed once per request, found by identity)."""

    host: str
    port: int
    tls: bool
    sni: str
    verify: str
    trust: str
    fingerprint: str
    fips: bool


#: ``OriginPeer.revoked`` of peers that check no revocations (Full mode, plain HTTP, none revoked).
NO_REVOCATIONS: Mapping[str, str] = MappingProxyType({})


def _no_revocations() -> Mapping[str, str]:
    return NO_REVOCATIONS  # a factory: dataclasses refuse an unhashable default (and it is shared, read-only)


#: Called per request with the snapshot's CA; SHA-256 of a PEM was ~2 % of edge CPU.
_TRUST_IDS: Final = BoundedCache[bytes, str](64)


def trust_id(origin_ca_pem: bytes) -> str:
    """Identity of the strict-mode trust store (the deployment origin CA on top of the system store)."""
    found = _TRUST_IDS.get(origin_ca_pem)
    if found is None:
        found = _TRUST_IDS.put(
            origin_ca_pem, hashlib.sha256(origin_ca_pem).hexdigest()[:16] if origin_ca_pem else "system"
        )
    return found


def pool_trust(trust: str, revocation: str) -> str:
    """The trust element of a pool key: the trust store's identity and, in strict modes, the revocation set's."""
    return f"{trust}/{revocation}" if revocation else trust


def strict_pool_trust(pki: DeploymentPki) -> str:
    """The trust element every strict peer of a snapshot with ``pki`` has (pipeline/builtin/origin_select.py)."""
    return pool_trust(trust_id(pki.origin_ca_cert_pem), pki.revocation_id)


@dataclass(frozen=True, slots=True)
class OriginPeer:
    """Where and how to connect for one request."""

    #: IP literal (A/AAAA record) or a name to resolve (CNAME record).
    host: str
    port: int
    tls: bool
    #: Server name sent in the ClientHello and checked in strict mode; the visitor's hostname.
    sni: str
    verify: VerifyMode
    #: Trust-store identity for STRICT (see :func:`trust_id`); empty otherwise.
    trust: str = ""
    #: The AOP certificate to present; ``None`` for no certificate.
    client_cert: ClientCert | None = field(default=None, compare=False)
    #: PEM of the deployment origin CA, trusted in STRICT (not part of the key: ``trust`` is).
    origin_ca_pem: bytes = field(default=b"", compare=False, repr=False)
    #: FIPS profile: only FIPS-approved suites on this connection (origin/tls.py).
    fips: bool = False
    #: STRICT: revoked Origin CA certificates, leaf SHA-256 -> API id (``DeploymentPki.revoked_origin_certs``);
    #: an origin presenting one is refused after the handshake. Not part of the key: ``revocation`` is.
    revoked: Mapping[str, str] = field(default_factory=_no_revocations, compare=False, repr=False)
    #: STRICT: identity of ``revoked`` (``DeploymentPki.revocation_id``, "" for none), joined to ``trust``
    #: in the pool key. ``trust`` alone stays the TLS context's key (origin/tls.py): the context's trust
    #: store does not change with a revocation, so no context is rebuilt for one.
    revocation: str = ""
    #: :meth:`pool_key`, computed once: peers are cached per route (pipeline/builtin/origin_select.py)
    #: and the key is asked for on every pool checkout.
    _key: PoolKey = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.tls:
            key = PoolKey(self.host, self.port, False, "", "", "", "", False)
        else:
            trust = pool_trust(self.trust, self.revocation)
            key = PoolKey(self.host, self.port, True, self.sni, self.verify.value, trust, self.fingerprint, self.fips)
        object.__setattr__(self, "_key", key)

    @property
    def fingerprint(self) -> str:
        return self.client_cert.fingerprint if self.client_cert is not None else ""

    def pool_key(self) -> PoolKey:
        """Everything that makes a connection distinct (address, port, scheme, SNI, verification, trust
        store and revoked certificates, client certificate identity and version)."""
        return self._key
