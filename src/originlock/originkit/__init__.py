"""The origin kit: what an origin operator uses to make AOP real.

- ``check``: prove an origin refuses everyone but the edge (:func:`check_origin`);
- ``snippets``: nginx / Apache / Caddy / HAProxy / Envoy / Traefik configuration for both phases;
- ``ssl``, ``verify``, ``asgi``, ``wsgi``: make a Python origin require the edge's certificate.

Only the standard library and ``cryptography`` are needed here; ``asgi``/``uvicorn_tls`` are imported
on demand so a WSGI origin needs no ASGI server installed.
"""

from __future__ import annotations

from originlock.originkit.check import check_origin
from originlock.originkit.gate import EdgeGate, ForwardedCert
from originlock.originkit.material import EdgeIdentity, EdgeMaterial
from originlock.originkit.memcert import KeyMaterialError, load_cert_chain_from_memory
from originlock.originkit.report import CheckReport, Outcome, ProbeKind, ProbeResult, Verdict
from originlock.originkit.ssl import context_factory, make_origin_ssl_context
from originlock.originkit.verify import EdgeTrust, EdgeVerificationError, VerifiedEdge, verify_edge_cert

__all__ = [
    "CheckReport",
    "EdgeGate",
    "EdgeIdentity",
    "EdgeMaterial",
    "EdgeTrust",
    "EdgeVerificationError",
    "ForwardedCert",
    "KeyMaterialError",
    "Outcome",
    "ProbeKind",
    "ProbeResult",
    "Verdict",
    "VerifiedEdge",
    "check_origin",
    "context_factory",
    "load_cert_chain_from_memory",
    "make_origin_ssl_context",
    "verify_edge_cert",
]
