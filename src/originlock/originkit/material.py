"""What the origin kit needs to know about the edge, and the small interface that supplies it.

The CLI and the control plane's exposure monitor both ask the same two questions: *which client
certificate does the edge present for hostname H* (for the checker) and *which CA(s) must the origin
trust for zone Z / hostname H* (for the config snippets). :class:`EdgeMaterial` is that interface; the
HTTP implementation lives in ``api_client.py``, and the monitor can implement it straight over the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["EdgeIdentity", "EdgeMaterial", "EdgeSource"]

#: Where the edge's client certificate comes from, in AOP precedence order (docs/architecture.md).
EdgeSource = Literal["hostname", "zone", "global", "none"]


@dataclass(frozen=True)
class EdgeIdentity:
    """The edge's client identity towards origins of one hostname (or of a zone, when no hostname is asked)."""

    source: EdgeSource
    #: Id of the hostname or zone certificate; ``None`` for ``global`` and ``none``.
    certificate_id: str | None
    #: PEM chain, leaf first, the edge presents; ``None`` when ``source`` is ``none``.
    certificate_pem: str | None
    #: PEM of every CA the origin should trust (both during a rotation overlap); ``None`` when ``none``.
    ca_bundle_pem: str | None

    @property
    def presents_certificate(self) -> bool:
        return self.source != "none" and bool(self.certificate_pem)


class EdgeMaterial(Protocol):
    """Supplies the edge's identity; implemented over the v4 API (CLI) or over the store (monitor)."""

    def edge_identity(self, *, zone: str | None, hostname: str | None) -> EdgeIdentity:
        """The identity for ``hostname`` in ``zone`` (zone name); either may be omitted, not both.

        With only ``hostname``, the zone is the longest suffix of it that exists. With only ``zone``, the
        answer is for the zone as a whole (zone certificate or global), ignoring hostname associations.

        Raises:
            LookupError: the zone does not exist.
            ControlPlaneError: the control plane could not be asked (network, auth, server error).
        """
        ...
