"""Turn what one probe observed into an :class:`Outcome`, and three outcomes into a verdict.

Pure: no sockets. The probe engine (``probe.py``) reports facts (an OpenSSL reason code, an HTTP status
and the first bytes of the body); the rules for what those facts *mean* live here so they can be tested
on their own and read in one place.
"""

from __future__ import annotations

from originlock.originkit.report import Outcome, ProbeKind, ProbeResult, Verdict

__all__ = [
    "CERT_REFUSAL_BODIES",
    "CERT_REFUSAL_STATUSES",
    "classify_edge_response",
    "classify_http",
    "classify_tls_error",
    "decide",
]

#: Statuses that mean "your client certificate was not good enough". 495/496 are nginx's internal codes
#: for a bad/missing certificate (shown only when an ``error_page`` maps them); 403 is what
#: application-level checks (our middleware, Caddy, HAProxy ACLs) answer.
CERT_REFUSAL_STATUSES = frozenset({403, 495, 496})
#: Bodies of nginx's 400 for ``ssl_verify_client on``: nginx finishes TLS, then answers 400 with these
#: titles (spec §7 "No required SSL certificate was sent").
CERT_REFUSAL_BODIES = (
    b"No required SSL certificate was sent",
    b"The SSL certificate error",
    b"SSL certificate error",
)
#: OpenSSL reason codes (``SSLError.reason``) that a server sends when it rejects or requires a client
#: certificate. ``HANDSHAKE_FAILURE`` (alert 40) is what TLS 1.2 servers send for a missing certificate.
CERT_ALERT_REASONS = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV1_ALERT_DECRYPT_ERROR",
    }
)
#: Reasons meaning "this port does not speak TLS" (e.g. a plain-HTTP origin).
NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"})


def classify_tls_error(reason: str | None, *, after_handshake: bool) -> tuple[Outcome, str]:
    """An ``ssl.SSLError`` (by its OpenSSL ``reason``) raised during or right after the handshake."""
    name = reason or "UNKNOWN"
    if name in NOT_TLS_REASONS:
        return Outcome.ERROR, f"the origin does not speak TLS on this port ({name.lower()})"
    when = "right after the TLS handshake" if after_handshake else "during the TLS handshake"
    if name == "EOF" and after_handshake:
        return Outcome.CLOSED, "TLS completed, then the origin closed the connection without answering"
    if name in ("EOF", "RESET"):
        # With TLS 1.3 the server checks our certificate after our side of the handshake is done, so a
        # rejection may arrive as a reset instead of an alert, depending on timing.
        how = "closed" if name == "EOF" else "reset"
        return Outcome.REFUSED_TLS, f"the origin {how} the connection {when}"
    if name in CERT_ALERT_REASONS:
        return Outcome.REFUSED_TLS, f"refused {when} with alert {name.lower()}"
    # Other handshake failures (no shared cipher, protocol version) still keep this client out, but say so.
    return Outcome.REFUSED_TLS, f"TLS failed {when} ({name.lower()}); not a client-certificate alert"


def classify_http(status: int, body_head: bytes) -> tuple[Outcome, str]:
    """A response read from the origin over an established TLS connection."""
    if status == 400 and any(marker in body_head for marker in CERT_REFUSAL_BODIES):
        return Outcome.REFUSED_HTTP, f"TLS completed, then HTTP {status} '{_marker(body_head)}'"
    if status in CERT_REFUSAL_STATUSES:
        return Outcome.REFUSED_HTTP, f"TLS completed, then HTTP {status}"
    return Outcome.ACCEPTED, f"answered HTTP {status}"


def _marker(body_head: bytes) -> str:
    for marker in CERT_REFUSAL_BODIES:
        if marker in body_head:
            return marker.decode()
    return ""


#: Edge statuses that say the origin refused the edge (spec §7): 525 handshake failed, 520 reset after it.
EDGE_REFUSAL = {525: "the edge could not complete TLS with the origin (525)", 520: "the origin reset the edge (520)"}
#: Edge statuses that say nothing about the edge's client certificate, but do say that every request through
#: the edge fails: what each means (as on the edge's own error pages) and whether the fix is configuration.
#: ``True`` = a configuration problem (MISCONFIGURED), ``False`` = the origin did not answer the edge
#: (UNREACHABLE); neither is LOCKED, since visitors cannot get through.
EDGE_FAILURES: dict[int, tuple[str, bool]] = {
    521: (
        "the origin refused the edge's TCP connection (521): is the edge pulling from another address or port?",
        True,
    ),
    522: ("the edge's TCP connection to the origin timed out (522)", False),
    523: ("the edge has no route to the origin's address (523): check the DNS record's content", True),
    524: ("the origin accepted the edge's connection but did not answer in time (524)", False),
    526: (
        "the edge could not verify the origin's server certificate (526): SSL mode strict needs an origin "
        "certificate that is unexpired, names this hostname and comes from a public CA or the deployment's "
        "origin CA (/ca/origin.pem); or set the zone's ssl to full",
        True,
    ),
    530: ("the edge could not resolve the origin (530): check the DNS record", True),
    502: ("the edge answered 502 (bad gateway)", False),
    503: ("the edge answered 503 (unavailable)", False),
    504: ("the edge answered 504 (gateway timeout)", False),
}
#: Kept for callers that only need the set.
EDGE_UNRELATED = frozenset(EDGE_FAILURES)


def classify_edge_response(status: int, body_head: bytes) -> tuple[Outcome, str]:
    """A response to a request sent *through the edge* for the checked hostname."""
    if status in EDGE_REFUSAL:
        return Outcome.REFUSED_TLS, EDGE_REFUSAL[status]
    if status in EDGE_FAILURES:
        return Outcome.ERROR, EDGE_FAILURES[status][0]
    outcome, detail = classify_http(status, body_head)
    return outcome, detail.replace("TLS completed, then", "the edge passed through")


def _strangers_refused(refused_how: str) -> list[str]:
    """The reasons when probes 1 and 2 were refused: strangers do not get in."""
    return [
        f"refuses requests without a client certificate ({refused_how})",
        "refuses certificates from an unrelated CA",
    ]


def _edge_failure_verdict(edge: ProbeResult, refused_how: str) -> tuple[Verdict, list[str]]:
    """Probe 3 went through the edge and the edge answered with an error page (or could not be reached)."""
    strangers = _strangers_refused(refused_how)
    if edge.status is None:
        return Verdict.UNREACHABLE, [*strangers, f"but the edge itself could not be reached: {edge.detail}"]
    config_problem = EDGE_FAILURES.get(edge.status, ("", False))[1]
    verdict = Verdict.MISCONFIGURED if config_problem else Verdict.UNREACHABLE
    return verdict, [*strangers, f"but every request through the edge fails: {edge.detail}"]


def decide(probes: dict[ProbeKind, ProbeResult]) -> tuple[Verdict, list[str], list[str]]:
    """Overall verdict, reasons and notes from the three probes (any may be NOT_RUN except NO_CERT)."""
    no_cert = probes[ProbeKind.NO_CERT]
    unrelated = probes.get(ProbeKind.UNRELATED_CA)
    edge = probes.get(ProbeKind.EDGE_CERT)
    notes: list[str] = []
    if no_cert.outcome is Outcome.ACCEPTED:
        reasons = ["accepts TLS without a client certificate: anyone who finds the origin bypasses the edge"]
        if edge is not None and edge.outcome.refused:
            reasons.append("and it rejects the edge's own certificate")
        return Verdict.OPEN, reasons, notes
    if no_cert.outcome is Outcome.ERROR:
        return Verdict.UNREACHABLE, [f"could not probe the origin: {no_cert.detail}"], notes
    if unrelated is not None and unrelated.outcome is Outcome.ACCEPTED:
        return Verdict.OPEN, ["accepts any certificate: it asks for one but does not check which CA issued it"], notes
    if unrelated is not None and unrelated.outcome is Outcome.ERROR:
        return Verdict.UNREACHABLE, [f"could not finish probing the origin: {unrelated.detail}"], notes
    refused_how = "at the TLS layer" if no_cert.outcome is Outcome.REFUSED_TLS else "with an HTTP error"
    if edge is None or edge.outcome is Outcome.NOT_RUN:
        why = edge.detail if edge is not None else "no edge certificate available"
        notes.append(
            f"the edge's own certificate was not tested ({why}); LOCKED here means only that strangers are "
            "refused, not that the edge gets in"
        )
        return Verdict.LOCKED, _strangers_refused(refused_how), notes
    if edge.outcome is Outcome.ERROR and edge.via == "edge":
        verdict, reasons = _edge_failure_verdict(edge, refused_how)
        return verdict, reasons, notes
    if edge.outcome is Outcome.ERROR:
        notes.append(f"the edge-certificate probe failed: {edge.detail}")
        return Verdict.LOCKED, _strangers_refused(refused_how), notes
    if edge.outcome.refused and edge.via == "none":
        return (
            Verdict.MISCONFIGURED,
            [
                "requires a client certificate, but the edge presents none for this hostname: requests through "
                "the edge will fail; enable Authenticated Origin Pulls for the zone or hostname"
            ],
            notes,
        )
    if edge.outcome.refused:
        effect = (
            "requests through the edge will fail with 525"
            if edge.outcome is Outcome.REFUSED_TLS
            else f"requests through the edge will get the origin's {edge.status or 'error'} response"
        )
        return Verdict.MISCONFIGURED, [f"rejects the edge's own certificate: {effect}"], notes
    return Verdict.LOCKED, [*_strangers_refused(refused_how), "accepts the edge's certificate"], notes
