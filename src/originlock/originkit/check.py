"""The origin checker: prove that an origin refuses everyone but the edge.

Theory of operation. Three probes connect to the origin itself, not through the edge:

1. **no client certificate** - what a visitor who found the origin's address would do;
2. **a certificate from an unrelated CA** - generated fresh for each run, with the same subject CN as the
   edge's certificate when known, so an origin that checks only the subject (or only that *some*
   certificate was sent, like nginx ``optional_no_ca``) is caught;
3. **the edge's certificate** - either with key material the operator holds locally (the control plane
   never returns private keys), or by sending the request *through the edge*, which presents its own
   certificate. Without either, probe 3 is "not run" and the verdict rests on probes 1-2 only, which is
   said in the report's notes.

Each probe sends a real ``GET`` with ``Host`` = the hostname; ``classify.py`` turns what happened into an
outcome and the three outcomes into LOCKED / OPEN / MISCONFIGURED (or UNREACHABLE).
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from originlock.originkit.classify import classify_edge_response, classify_http, classify_tls_error, decide
from originlock.originkit.probe import ClientMaterial, Observation, observe
from originlock.originkit.report import CheckReport, Outcome, ProbeKind, ProbeResult
from originlock.originkit.target import Target, parse_target
from originlock.tls.certs import load_certificates
from originlock.tls.issue import issue_ca, issue_leaf

__all__ = ["DEFAULT_TIMEOUT", "check_origin", "unrelated_client"]

#: Seconds per probe step (connect, handshake, response). Cloudflare waits 19 s for a connect (spec §7);
#: a checker that an operator runs by hand should answer sooner.
DEFAULT_TIMEOUT = 10.0


def unrelated_client(now: datetime, *, like: x509.Certificate | None = None) -> ClientMaterial:
    """A client certificate from a brand-new CA nobody trusts, optionally copying ``like``'s CN and O."""
    cn, org = "originlock-check", "originlock unrelated CA"
    if like is not None:
        cn = _attr(like, NameOID.COMMON_NAME) or cn
        org = _attr(like, NameOID.ORGANIZATION_NAME) or org
    ca = issue_ca("originlock-check unrelated CA", now=now, days=1, organization="originlock-check")
    leaf = issue_leaf(ca, cn, now=now, days=1, organization=org)
    return ClientMaterial(chain_pem=leaf.cert_pem + ca.cert_pem, key_pem=leaf.key_pem)


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _result(kind: ProbeKind, obs: Observation, *, via: str, subject: str | None) -> ProbeResult:
    if obs.network_error is not None:
        outcome, detail = Outcome.ERROR, obs.network_error
    elif obs.tls_error is not None:
        outcome, detail = classify_tls_error(obs.tls_error, after_handshake=obs.after_handshake)
    elif obs.closed or obs.status is None:
        outcome, detail = Outcome.CLOSED, "TLS completed, then the connection closed without an HTTP response"
    elif via == "edge":
        outcome, detail = classify_edge_response(obs.status, obs.body_head)
    else:
        outcome, detail = classify_http(obs.status, obs.body_head)
    return ProbeResult(
        kind, outcome, detail, status=obs.status, via=via, client_subject=subject, elapsed_ms=obs.elapsed_ms
    )


def _subject(chain_pem: str | bytes) -> str | None:
    try:
        return load_certificates(chain_pem)[0].subject.rfc4514_string()
    except ValueError:
        return None


def check_origin(
    target: str | Target,
    *,
    server_name: str | None = None,
    edge_client: tuple[str | bytes, str | bytes] | None = None,
    via_edge: str | Target | None = None,
    edge_certificate_pem: str | None = None,
    edge_source: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    now: datetime | None = None,
) -> CheckReport:
    """Probe ``target`` three ways and return the verdict.

    Args:
        target: the origin itself: ``https://203.0.113.10:8443/health``, ``host:port`` or ``host``.
        server_name: SNI and ``Host`` for every probe; defaults to the target's host.
        edge_client: ``(chain_pem, key_pem)`` the edge presents, for probe 3 made directly (kept in memory).
        via_edge: the edge's URL; probe 3 then goes through the edge (used when ``edge_client`` is None).
        edge_certificate_pem: the certificate the control plane says the edge presents; copied into the
            unrelated probe's subject and compared with ``edge_client``.
        edge_source: ``hostname``/``zone``/``global``/``none`` as reported by the control plane.
        timeout: seconds per network step.
        now: clock for the throwaway CA (tests).

    Raises:
        ValueError: ``target`` or ``via_edge`` cannot be parsed.
        KeyMaterialError: ``edge_client`` does not load (bad PEM, key does not match).
    """
    origin = target if isinstance(target, Target) else parse_target(target)
    name = server_name or origin.host
    now = now or datetime.now(UTC)
    edge_leaf = load_certificates(edge_certificate_pem)[0] if edge_certificate_pem else None
    notes: list[str] = []
    if edge_client is not None and edge_leaf is not None:
        given = load_certificates(edge_client[0])[0]
        if given.fingerprint(hashes.SHA256()) != edge_leaf.fingerprint(hashes.SHA256()):
            notes.append(f"the client certificate given locally is not the one the edge presents for {name}")

    probes: dict[ProbeKind, ProbeResult] = {}
    obs = observe(origin, server_name=name, client=None, timeout=timeout)
    probes[ProbeKind.NO_CERT] = _result(ProbeKind.NO_CERT, obs, via="direct", subject=None)
    server_der = obs.server_cert_der

    stranger = unrelated_client(now, like=edge_leaf)
    obs = observe(origin, server_name=name, client=stranger, timeout=timeout)
    probes[ProbeKind.UNRELATED_CA] = _result(
        ProbeKind.UNRELATED_CA, obs, via="direct", subject=_subject(stranger.chain_pem)
    )
    server_der = server_der or obs.server_cert_der

    if edge_source == "none" and edge_client is None and via_edge is None:
        # The edge connects without a certificate, so it gets exactly what probe 1 got.
        first = probes[ProbeKind.NO_CERT]
        probes[ProbeKind.EDGE_CERT] = ProbeResult(
            ProbeKind.EDGE_CERT,
            first.outcome,
            f"the edge presents no client certificate for {name} (control plane), so: {first.detail}",
            status=first.status,
            via="none",
        )
    else:
        probes[ProbeKind.EDGE_CERT] = _edge_probe(origin, name, edge_client, via_edge, timeout)
    verdict, reasons, more_notes = decide(probes)
    fingerprint = x509.load_der_x509_certificate(server_der).fingerprint(hashes.SHA256()).hex() if server_der else None
    return CheckReport(
        target=str(origin),
        server_name=name,
        verdict=verdict,
        reasons=tuple(reasons),
        probes=tuple(probes[k] for k in ProbeKind),
        notes=tuple(notes + more_notes),
        origin_certificate_sha256=fingerprint,
        edge_source=edge_source,
    )


def _edge_probe(
    origin: Target,
    name: str,
    edge_client: tuple[str | bytes, str | bytes] | None,
    via_edge: str | Target | None,
    timeout: float,
) -> ProbeResult:
    if edge_client is not None:
        material = ClientMaterial(chain_pem=edge_client[0], key_pem=edge_client[1])
        obs = observe(origin, server_name=name, client=material, timeout=timeout)
        return _result(ProbeKind.EDGE_CERT, obs, via="direct", subject=_subject(edge_client[0]))
    if via_edge is not None:
        edge = via_edge if isinstance(via_edge, Target) else parse_target(via_edge, allow_http=True)
        obs = observe(edge, server_name=name, client=None, timeout=timeout)
        return _result(ProbeKind.EDGE_CERT, obs, via="edge", subject=None)
    return ProbeResult(
        ProbeKind.EDGE_CERT,
        Outcome.NOT_RUN,
        "no edge key material given (--client-cert/--client-key) and no edge URL (--via-edge)",
    )
