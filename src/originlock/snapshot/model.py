"""Immutable snapshot values: what the edge needs to serve one hostname, and nothing it can change.

A :class:`Snapshot` is built once per store change and swapped atomically; requests keep the one
they started with. Private keys live here only in memory (never on disk in clear).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import MISSING, InitVar, dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Final, Literal

from originlock.snapshot.lifetime import Lifetime
from originlock.snapshot.routes import RouteTable
from originlock.waf import CompiledRuleset, Phase

__all__ = ["ClientCert", "DeploymentPki", "EdgeCert", "Route", "Snapshot", "SslMode", "ZonePhases"]

ZonePhases = Mapping[Phase, tuple[CompiledRuleset, ...]]
"""One zone's compiled rulesets per WAF phase, in the form ``evaluate_request`` takes them."""


class SslMode(enum.StrEnum):
    """The zone setting ``ssl`` (spec §6)."""

    OFF = "off"
    FLEXIBLE = "flexible"
    FULL = "full"
    STRICT = "strict"
    ORIGIN_PULL = "origin_pull"


CertSource = Literal["hostname", "zone", "global"]


@dataclass(frozen=True)
class ClientCert:
    """The client certificate the edge presents to an origin (AOP)."""

    #: API id of the certificate (``global`` for the deployment's shared leaf).
    id: str
    source: CertSource
    #: SHA-256 of the leaf: identity *and* version, part of every origin pool key.
    fingerprint: str
    #: Leaf first, then intermediates needed to chain to the CA the origin trusts.
    chain_pem: bytes
    #: Unencrypted PKCS#8 PEM, in memory only.
    key_pem: bytes = field(repr=False)
    not_after: datetime
    #: The leaf's notBefore: before it the certificate is pending, never presented (issue 10, item 11).
    not_before: datetime | None = None

    def __repr__(self) -> str:
        return f"ClientCert(id={self.id!r}, source={self.source}, fingerprint={self.fingerprint[:16]}...)"


@dataclass(frozen=True)
class Route:
    """Everything the edge needs for one proxied hostname."""

    hostname: str
    zone_id: str
    zone_name: str
    #: A/AAAA content (an address) or CNAME content (a name the edge resolves).
    origin: str
    record_type: Literal["A", "AAAA", "CNAME"]
    ssl_mode: SslMode
    always_use_https: bool
    #: ``1.0``..``1.3``; the edge refuses visitor handshakes below it for this hostname.
    min_tls_version: str
    #: Chosen by the AOP precedence (snapshot/aop.py) for TLS pulls; ``None`` means present no certificate.
    client_cert: ClientCert | None
    #: Set when a certificate was chosen but cannot be used (expired...): the edge answers 525, never
    #: falling back to a weaker certificate (fail closed).
    client_cert_error: str | None = None
    #: FIPS profile: edge-to-origin TLS limited to FIPS-approved suites (origin/tls.py).
    fips: bool = False
    #: Zone setting ``websockets``: an Upgrade: websocket handshake is relayed (edge/websocket.py).
    websockets: bool = True
    #: Zone setting ``tls_1_3`` (``on``/``zrt``: True; ``off``: False): False caps this hostname's visitor
    #: handshakes at TLS 1.2 (edge/visitor_tls.py).
    tls_1_3: bool = True
    #: Zone setting ``security_header``: the header fields (name, value) every HTTPS response of this
    #: hostname carries (HSTS, nosniff), built and checked once at compile time (tls/hsts.py); they replace
    #: origin fields of the same names. Empty when nothing is enabled.
    security_headers: tuple[tuple[bytes, bytes], ...] = ()
    #: Zone setting ``http2``: visitors of this hostname may negotiate HTTP/2 (ALPN ``h2``; edge/visitor_tls.py).
    http2: bool = True

    @staticmethod
    def template(**values: object) -> dict[str, object]:
        """Every field but the per-hostname ones (``hostname``, ``origin``, ``record_type``), for
        :meth:`for_host`: the fields' defaults, overridden by ``values``."""
        template = _route_defaults()
        template.update(values)
        missing = _ROUTE_SHARED.difference(template)  # frozenset - dict_keys is a set: the compiled build checks
        if missing:
            raise TypeError(f"Route.template() lacks {sorted(missing)}")
        return template

    @classmethod
    def for_host(cls, template: dict[str, object], hostname: str, origin: str, record_type: str) -> Route:
        """The route of one hostname of a zone whose shared fields are ``template`` (:meth:`template`).

        Equal to the one the constructor builds, without its cost when interpreted: the frozen dataclass's
        ``__init__`` sets each field through ``object.__setattr__``, a quarter of a 100k-hostname compile.
        Compiled by mypyc (the wheel's build), the class is native, has no ``__dict__`` to stamp, and its
        ``__init__`` is native code: the constructor is the fast way there.
        """
        if _STAMPABLE:
            route = object.__new__(cls)
            values = template.copy()
            values["hostname"] = hostname
            values["origin"] = origin
            values["record_type"] = record_type
            object.__setattr__(route, "__dict__", values)
            return route
        return cls(hostname=hostname, origin=origin, record_type=record_type, **template)  # type: ignore[arg-type]


_PER_HOST = frozenset({"hostname", "origin", "record_type"})
#: Routes keep their fields in an instance ``__dict__`` (the interpreted source; not the compiled class).
_STAMPABLE: Final = Route.__dictoffset__ != 0
_ROUTE_SHARED = frozenset(f.name for f in fields(Route)) - _PER_HOST
_ROUTE_DEFAULTS = {f.name: f.default for f in fields(Route) if f.default is not MISSING}


def _route_defaults() -> dict[str, object]:
    return _ROUTE_DEFAULTS.copy()


@dataclass(frozen=True)
class DeploymentPki:
    """The deployment's own CAs, as the edge needs them."""

    #: Issues visitor-facing certificates on demand when no edge certificate was uploaded.
    edge_ca_cert_pem: bytes
    edge_ca_key_pem: bytes = field(repr=False)
    #: Trusted in addition to the system store when validating origins in strict mode.
    origin_ca_cert_pem: bytes = b""
    #: The shared global-AOP leaf signed by the origin-pull CA.
    global_client: ClientCert | None = None
    #: Origin CA certificates revoked through ``DELETE /certificates/{id}`` and not yet expired: SHA-256 of
    #: the leaf's DER (lower-case hex) -> the certificate's API id. In strict modes the edge refuses an
    #: origin presenting one (526). Fingerprints rather than serials: the DER is what the handshake hands
    #: over (one hash per new connection, no parsing), and a serial is unique only per issuer.
    revoked_origin_certs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Identity of ``revoked_origin_certs`` ("" when empty), derived here once per snapshot: part of the
    #: pool key of strict pulls, so a revocation gives new keys and no connection verified before it is
    #: reused (origin/peer.py).
    revocation_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        revoked = dict(self.revoked_origin_certs)
        object.__setattr__(self, "revoked_origin_certs", MappingProxyType(revoked))
        digest = hashlib.sha256("\n".join(sorted(revoked)).encode()).hexdigest()[:16] if revoked else ""
        object.__setattr__(self, "revocation_id", digest)


@dataclass(frozen=True)
class EdgeCert:
    """An uploaded visitor-facing certificate (custom_certificates) and the names it covers."""

    id: str
    zone_id: str
    #: Lower-case SAN DNS names, possibly ``*.`` wildcards.
    hosts: tuple[str, ...]
    priority: int
    #: SHA-256 of the leaf: cache key for the TLS context built from it.
    fingerprint: str
    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    not_after: datetime

    def covers(self, host: str) -> bool:
        if host in self.hosts:
            return True
        _, _, parent = host.partition(".")
        return bool(parent) and f"*.{parent}" in self.hosts


@dataclass(frozen=True)
class Snapshot:
    generation: int
    routes: Mapping[str, Route]
    pki: DeploymentPki
    #: Names with DNS-only records: they exist, so a wildcard does not cover them (RFC 4592 §2.2.1),
    #: yet the edge must not serve them.
    dns_only: frozenset[str] = frozenset()
    #: Uploaded edge certificates, highest priority first.
    edge_certs: tuple[EdgeCert, ...] = ()
    #: Zone id -> compiled rulesets per WAF phase; zones without rules are absent (issue 6).
    waf: Mapping[str, ZonePhases] = field(default_factory=lambda: MappingProxyType({}))
    #: The client certificates the routes present, when the builder already knows them (the assembly
    #: keeps them per zone); else they are collected from the routes.
    known_fingerprints: InitVar[frozenset[str] | None] = None
    #: Whether some route has ``tls_1_3`` off, when the builder already knows it (the assembly keeps the
    #: zones that have); else the routes are walked.
    known_tls12_only: InitVar[bool | None] = None
    #: The two layers behind ``routes`` (snapshot/routes.py), looked up once per request: a plain dict's
    #: ``get`` is a direct call where a ``Mapping``'s is a generic method call. ``_overlay`` holds the names
    #: changed since ``_base`` was made (``None``: removed); it is empty after a whole rebuild.
    _base: dict[str, Route] = field(init=False, repr=False, compare=False)
    _overlay: dict[str, Route | None] = field(init=False, repr=False, compare=False)
    #: SHA-256 fingerprints of every client certificate the snapshot may present (routes and the global
    #: leaf): at a swap the edge retires origin connections and TLS contexts of the others, and walking
    #: 100k routes for it on the event loop stalled requests at every change.
    client_fingerprints: frozenset[str] = field(init=False, repr=False, compare=False)
    #: Some route's zone turned ``tls_1_3`` off: the edge then caps handshakes per server name. Known here
    #: so that the edge does not walk 100k routes on its event loop at every swap.
    any_tls12_only: bool = field(init=False, repr=False, compare=False)
    #: Held by this snapshot only: ``weakref.ref(snapshot.lifetime)`` says when the edge has let go of it.
    lifetime: Lifetime = field(init=False, repr=False, compare=False)

    def __post_init__(self, known_fingerprints: frozenset[str] | None, known_tls12_only: bool | None) -> None:
        object.__setattr__(self, "lifetime", Lifetime())
        # A table from an assembly shares its base with the other snapshots; anything else is copied, so a
        # caller's dict changed later never changes the snapshot.
        given = self.routes
        table = given if isinstance(given, RouteTable) else RouteTable(dict(given))
        object.__setattr__(self, "routes", table)
        object.__setattr__(self, "_base", table.base)
        object.__setattr__(self, "_overlay", table.overlay)
        leaf = self.pki.global_client
        if known_fingerprints is not None and (leaf is None or leaf.fingerprint in known_fingerprints):
            # The assembly's set as it is: copying 10k fingerprints was most of a change's snapshot.
            fingerprints = known_fingerprints
        else:
            found = (
                set(known_fingerprints)
                if known_fingerprints is not None
                else {r.client_cert.fingerprint for r in table.values() if r.client_cert is not None}
            )
            if leaf is not None:
                found.add(leaf.fingerprint)
            fingerprints = frozenset(found)
        object.__setattr__(self, "client_fingerprints", fingerprints)
        tls12_only = known_tls12_only
        if tls12_only is None:
            tls12_only = not all(route.tls_1_3 for route in table.values())
        object.__setattr__(self, "any_tls12_only", tls12_only)

    def edge_cert_for(self, host: str, now: datetime) -> EdgeCert | None:
        """The uploaded certificate to serve for ``host``: highest priority among unexpired ones covering it."""
        for cert in self.edge_certs:
            if cert.not_after > now and cert.covers(host):
                return cert
        return None

    def route_for(self, host: str) -> Route | None:
        """Exact hostname first, then the closest ``*.`` wildcard record (Cloudflare's DNS precedence)."""
        # The edge passes normalised names (zone_router.host_of): one lookup, two while an overlay exists.
        route = self._lookup(host)
        if route is not None:
            return route
        host = host.rstrip(".").lower()
        route = self._lookup(host)
        if route is not None or host in self.dns_only:
            return route
        labels = host.split(".")
        for i in range(1, len(labels)):
            route = self._lookup("*." + ".".join(labels[i:]))
            if route is not None:
                return route
        return None

    def _lookup(self, name: str) -> Route | None:
        overlay = self._overlay
        if overlay and name in overlay:
            return overlay[name]
        return self._base.get(name)
