"""The one admission decision shared by the ASGI and WSGI middleware.

Given what the server saw (the TLS peer chain, or a forwarded-certificate header when that mode is on)
and the request's ``Host``, return the verified edge identity or raise :class:`EdgeVerificationError`.
Pure apart from the injected clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509

from originlock.originkit.forwarded import ForwardedFormat, parse_forwarded
from originlock.originkit.verify import (
    EdgeTrust,
    EdgeVerificationError,
    VerifiedEdge,
    load_der_or_pem,
    verify_edge_cert,
)

__all__ = ["DENIED_BODY", "EdgeGate", "ForwardedCert"]

#: What a refused client sees. Deliberately generic: the reason goes to the log, not to a stranger.
DENIED_BODY = b"403 Forbidden: this origin only accepts requests from its edge\n"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ForwardedCert:
    """Trust a client certificate forwarded in a header by a TLS-terminating proxy (off unless given).

    Only safe when every request reaches the app through that proxy and the proxy overwrites the header.
    """

    #: Header name, case-insensitive.
    header: str = "x-forwarded-client-cert"
    #: ``xfcc`` (Envoy ``Cert="..."``) or ``pem`` (URL-encoded/raw PEM or base64 DER).
    format: ForwardedFormat = "xfcc"


@dataclass(frozen=True)
class EdgeGate:
    trust: EdgeTrust
    forwarded: ForwardedCert | None = None
    clock: Callable[[], datetime] = field(default=_utcnow, repr=False)

    def admit(
        self,
        *,
        peer_chain: Sequence[bytes | str] | None,
        host: str | None,
        headers: Mapping[str, str],
    ) -> VerifiedEdge:
        """Verify the peer; ``headers`` keys must be lower-case.

        Raises:
            EdgeVerificationError: no certificate, wrong CA, wrong pin, or a malformed forwarded header.
        """
        certs: list[x509.Certificate]
        if self.forwarded is not None:
            value = headers.get(self.forwarded.header.lower())
            if not value:
                raise EdgeVerificationError(f"no forwarded client certificate in {self.forwarded.header}")
            certs = parse_forwarded(self.forwarded.format, value)
        elif peer_chain:
            certs = [load_der_or_pem(item) for item in peer_chain]
        else:
            raise EdgeVerificationError("no client certificate was presented")
        return verify_edge_cert(self.trust, certs[0], certs[1:], hostname=host, now=self.clock())
