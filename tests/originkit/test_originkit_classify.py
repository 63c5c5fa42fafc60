"""Pure parts of the checker: target parsing, outcome classification, verdicts, the report's JSON."""

from __future__ import annotations

import json

import pytest

from originlock.originkit.classify import classify_edge_response, classify_http, classify_tls_error, decide
from originlock.originkit.report import CheckReport, Outcome, ProbeKind, ProbeResult, Verdict, format_text
from originlock.originkit.target import parse_target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://203.0.113.10:8443/health?x=1", ("https", "203.0.113.10", 8443, "/health?x=1")),
        ("origin.example.test", ("https", "origin.example.test", 443, "/")),
        ("[2001:db8::1]:9443", ("https", "2001:db8::1", 9443, "/")),
    ],
)
def test_parse_target(text: str, expected: tuple[str, str, int, str]) -> None:
    t = parse_target(text)
    assert (t.scheme, t.host, t.port, t.path) == expected


@pytest.mark.parametrize("bad", ["", "http://origin", "ftp://x", "https://:443", "https://h:99999"])
def test_parse_target_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_target(bad)


def test_parse_target_http_for_edge() -> None:
    assert parse_target("http://edge:8080", allow_http=True).port == 8080
    assert str(parse_target("[::1]:8443")) == "https://[::1]:8443/"


def test_classify_tls() -> None:
    assert classify_tls_error("TLSV13_ALERT_CERTIFICATE_REQUIRED", after_handshake=True)[0] is Outcome.REFUSED_TLS
    assert classify_tls_error("WRONG_VERSION_NUMBER", after_handshake=False)[0] is Outcome.ERROR
    assert classify_tls_error("EOF", after_handshake=True)[0] is Outcome.CLOSED
    assert classify_tls_error("RESET", after_handshake=False)[0] is Outcome.REFUSED_TLS
    assert classify_tls_error("RESET", after_handshake=True)[0] is Outcome.REFUSED_TLS
    outcome, detail = classify_tls_error("NO_SHARED_CIPHER", after_handshake=False)
    assert outcome is Outcome.REFUSED_TLS and "not a client-certificate alert" in detail


def test_classify_http() -> None:
    assert classify_http(400, b"<title>400 No required SSL certificate was sent</title>")[0] is Outcome.REFUSED_HTTP
    assert classify_http(400, b"bad request")[0] is Outcome.ACCEPTED
    for status in (403, 495, 496):
        assert classify_http(status, b"")[0] is Outcome.REFUSED_HTTP
    assert classify_http(404, b"")[0] is Outcome.ACCEPTED
    assert classify_http(502, b"")[0] is Outcome.ACCEPTED


def test_classify_edge() -> None:
    assert classify_edge_response(525, b"")[0] is Outcome.REFUSED_TLS
    assert classify_edge_response(522, b"")[0] is Outcome.ERROR
    outcome, detail = classify_edge_response(400, b"No required SSL certificate was sent")
    assert outcome is Outcome.REFUSED_HTTP and detail.startswith("the edge passed through")
    assert classify_edge_response(200, b"")[0] is Outcome.ACCEPTED


def _p(kind: ProbeKind, outcome: Outcome, via: str = "direct") -> ProbeResult:
    return ProbeResult(kind, outcome, "x", status=400 if outcome is Outcome.REFUSED_HTTP else None, via=via)


@pytest.mark.parametrize(
    ("no_cert", "stranger", "edge", "verdict", "reason"),
    [
        (Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.ACCEPTED, Verdict.OPEN, "accepts TLS without"),
        (Outcome.REFUSED_HTTP, Outcome.ACCEPTED, Outcome.ACCEPTED, Verdict.OPEN, "accepts any certificate"),
        (Outcome.REFUSED_TLS, Outcome.REFUSED_TLS, Outcome.REFUSED_TLS, Verdict.MISCONFIGURED, "fail with 525"),
        (Outcome.REFUSED_HTTP, Outcome.REFUSED_HTTP, Outcome.REFUSED_HTTP, Verdict.MISCONFIGURED, "origin's 400"),
        (Outcome.REFUSED_TLS, Outcome.REFUSED_TLS, Outcome.ACCEPTED, Verdict.LOCKED, "refuses requests"),
        (Outcome.CLOSED, Outcome.REFUSED_TLS, Outcome.NOT_RUN, Verdict.LOCKED, "refuses requests"),
        (Outcome.REFUSED_TLS, Outcome.REFUSED_TLS, Outcome.ERROR, Verdict.LOCKED, "refuses requests"),
        (Outcome.ERROR, Outcome.ERROR, Outcome.ERROR, Verdict.UNREACHABLE, "could not probe"),
        (Outcome.REFUSED_TLS, Outcome.ERROR, Outcome.ERROR, Verdict.UNREACHABLE, "could not finish"),
    ],
)
def test_decide(no_cert: Outcome, stranger: Outcome, edge: Outcome, verdict: Verdict, reason: str) -> None:
    got, reasons, notes = decide(
        {
            ProbeKind.NO_CERT: _p(ProbeKind.NO_CERT, no_cert),
            ProbeKind.UNRELATED_CA: _p(ProbeKind.UNRELATED_CA, stranger),
            ProbeKind.EDGE_CERT: _p(ProbeKind.EDGE_CERT, edge),
        }
    )
    assert got is verdict
    assert reason in reasons[0]
    assert bool(notes) == (verdict is Verdict.LOCKED and edge is not Outcome.ACCEPTED)


def test_report_json_and_text() -> None:
    probes = (
        _p(ProbeKind.NO_CERT, Outcome.REFUSED_TLS),
        _p(ProbeKind.UNRELATED_CA, Outcome.REFUSED_TLS),
        _p(ProbeKind.EDGE_CERT, Outcome.REFUSED_TLS, via="edge"),
    )
    report = CheckReport("https://o:443/", "app.test", Verdict.MISCONFIGURED, ("why",), probes, notes=("n",))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "MISCONFIGURED" and [p["probe"] for p in data["probes"]] == [k.value for k in ProbeKind]
    text = format_text(report)
    assert text.startswith("MISCONFIGURED  https://o:443/ (Host: app.test)") and "(via the edge)" in text
    assert not report.locked


@pytest.mark.parametrize(
    ("status", "verdict", "words"),
    [
        (526, Verdict.MISCONFIGURED, "could not verify the origin's server certificate"),
        (521, Verdict.MISCONFIGURED, "refused the edge's TCP connection"),
        (523, Verdict.MISCONFIGURED, "no route"),
        (522, Verdict.UNREACHABLE, "timed out"),
        (524, Verdict.UNREACHABLE, "did not answer in time"),
        (None, Verdict.UNREACHABLE, "the edge itself could not be reached"),
    ],
)
def test_edge_failures_are_never_locked(status: int | None, verdict: Verdict, words: str) -> None:
    """Every request through the edge fails: whatever the origin does with strangers, that is not LOCKED."""
    detail = classify_edge_response(status, b"")[1] if status else "TCP connect to 127.0.0.1:1 failed"
    refused = ProbeResult(ProbeKind.NO_CERT, Outcome.REFUSED_TLS, "alert", via="direct")
    probes = {
        ProbeKind.NO_CERT: refused,
        ProbeKind.UNRELATED_CA: ProbeResult(ProbeKind.UNRELATED_CA, Outcome.REFUSED_TLS, "alert", via="direct"),
        ProbeKind.EDGE_CERT: ProbeResult(ProbeKind.EDGE_CERT, Outcome.ERROR, detail, status=status, via="edge"),
    }
    got, reasons, _ = decide(probes)
    assert got is verdict
    assert words in reasons[-1]
    assert status is None or "every request through the edge fails" in reasons[-1]
