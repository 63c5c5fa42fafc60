"""What the origin checker found: one result per probe and an overall verdict, JSON-serialisable.

Pure data: no I/O. ``CheckReport.to_dict()`` is the ``--json`` output and what the control plane's
exposure monitor records, so field names are part of the public contract.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckReport", "Outcome", "ProbeKind", "ProbeResult", "Verdict", "format_text"]


class ProbeKind(enum.StrEnum):
    """The three ways the checker knocks on the origin."""

    NO_CERT = "no_client_certificate"
    UNRELATED_CA = "unrelated_ca_certificate"
    EDGE_CERT = "edge_certificate"


class Outcome(enum.StrEnum):
    """What happened to one probe."""

    #: The TLS handshake (or the first read after it, with TLS 1.3) ended with an alert or a reset.
    REFUSED_TLS = "refused_tls"
    #: TLS completed but the server answered with a client-certificate refusal (nginx 400, 403, 495, 496).
    REFUSED_HTTP = "refused_http"
    #: TLS completed and the server closed without any HTTP response.
    CLOSED = "closed"
    #: The server answered the request: it let this client in.
    ACCEPTED = "accepted"
    #: The probe could not tell: TCP failure, timeout, not TLS on this port, edge error not about the origin.
    ERROR = "error"
    #: The probe was not attempted (no material for it); ``reason`` says why.
    NOT_RUN = "not_run"

    @property
    def refused(self) -> bool:
        return self in (Outcome.REFUSED_TLS, Outcome.REFUSED_HTTP, Outcome.CLOSED)


class Verdict(enum.StrEnum):
    LOCKED = "LOCKED"
    OPEN = "OPEN"
    MISCONFIGURED = "MISCONFIGURED"
    #: Probes could not reach the origin (or it does not speak TLS there): nothing was proven either way.
    UNREACHABLE = "UNREACHABLE"


@dataclass(frozen=True)
class ProbeResult:
    kind: ProbeKind
    outcome: Outcome
    #: One plain sentence: what the origin did.
    detail: str
    #: HTTP status when a response was read.
    status: int | None = None
    #: ``direct`` (the checker connected itself), ``edge`` (the request went through the edge) or
    #: ``none`` (not sent: the edge presents no certificate, so probe 1's result stands for it).
    via: str = "direct"
    #: Subject of the client certificate presented, if any.
    client_subject: str | None = None
    elapsed_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": self.kind.value,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "status": self.status,
            "via": self.via,
            "client_subject": self.client_subject,
            "elapsed_ms": None if self.elapsed_ms is None else round(self.elapsed_ms, 1),
        }


@dataclass(frozen=True)
class CheckReport:
    target: str
    server_name: str
    verdict: Verdict
    #: Plain-words reasons for the verdict, most important first.
    reasons: tuple[str, ...]
    probes: tuple[ProbeResult, ...]
    #: Facts worth showing that do not change the verdict (e.g. the edge probe was not run).
    notes: tuple[str, ...] = ()
    #: SHA-256 fingerprint of the origin's own server certificate, as seen by the probes.
    origin_certificate_sha256: str | None = None
    #: Where the edge's certificate came from (``hostname``/``zone``/``global``/``none``), when known.
    edge_source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def locked(self) -> bool:
        return self.verdict is Verdict.LOCKED

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "server_name": self.server_name,
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "probes": [p.to_dict() for p in self.probes],
            "origin_certificate_sha256": self.origin_certificate_sha256,
            "edge_source": self.edge_source,
            **self.extra,
        }


_LABELS = {
    ProbeKind.NO_CERT: "no client certificate",
    ProbeKind.UNRELATED_CA: "certificate from an unrelated CA",
    ProbeKind.EDGE_CERT: "the edge's certificate",
}


def format_text(report: CheckReport) -> str:
    """Human output for ``originlock origin check``."""
    lines = [f"{report.verdict.value}  {report.target} (Host: {report.server_name})"]
    lines += [f"  - {reason}" for reason in report.reasons]
    lines.append("probes:")
    for probe in report.probes:
        via = {"edge": " (via the edge)", "none": " (edge has none)"}.get(probe.via, "")
        lines.append(f"  {_LABELS[probe.kind]}{via}: {probe.outcome.value} - {probe.detail}")
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)
