"""WAF evaluation cost per request for a 25-rule custom ruleset (a benchmark, not a test).

Run: ``python bench/waf_eval.py``. Reports µs per request for the common path (a benign request
that matches no rule, so every rule is evaluated) and for a request blocked by the last rule.
Building ``FieldValues`` and computing the field values is included: it is part of the per-request
cost (the third line, with values already cached, shows the rules alone). The box is shared: run it
a few times and compare best and median, see the "Performance" section of docs/waf.md.
"""

from __future__ import annotations

import statistics
import sys
import timeit
from pathlib import Path

# Measure this checkout's engine, not an installed copy of the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from originlock.waf import Action, FieldValues, Phase, RequestFields, Rule, compile_ruleset, evaluate_request

EXPRESSIONS = [
    'http.request.uri.path matches "^/wp-(admin|login)\\.php"',
    'http.user_agent contains "sqlmap"',
    'http.user_agent contains "nikto"',
    'lower(http.user_agent) contains "masscan"',
    "ip.src in {192.0.2.0/24 198.51.100.0/24 2001:db8::/32}",
    'http.request.method in {"TRACE" "TRACK" "CONNECT"}',
    'http.host eq "admin.example.com" and not ip.src in {10.0.0.0/8}',
    'starts_with(http.request.uri.path, "/.git")',
    'ends_with(http.request.uri.path, ".env")',
    'http.request.uri.path.extension in {"php" "asp" "aspx" "jsp" "cgi"}',
    'http.request.uri.query contains "union select"',
    'http.request.uri.query matches "(?i)<script"',
    'any(http.request.headers.names[*] eq "X-Debug")',
    'http.request.headers["x-forwarded-host"][0] ne "www.example.com"',
    "cf.waf.score lt 20",
    "cf.bot_management.score lt 30 and not cf.bot_management.verified_bot",
    'ip.src.country in {"KP" "IR"}',
    'http.request.uri.path wildcard "/admin/*"',
    'http.referer contains "spam.example"',
    'http.request.version eq "HTTP/1.0" and http.request.method eq "POST"',
    "len(http.request.uri.query) gt 2048",
    'http.cookie contains "malicious="',
    'http.request.uri.path eq "/xmlrpc.php"',
    'http.host wildcard "*.internal.example.com"',
    'http.request.uri.path eq "/blocked"',
]

BENIGN = RequestFields(
    method="GET",
    host="www.example.com",
    path="/products/42",
    query="ref=home",
    headers=(
        (b"Host", b"www.example.com"),
        (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
        (b"Accept", b"text/html"),
        (b"Accept-Language", b"en-US,en;q=0.5"),
        (b"Cookie", b"session=abc123"),
    ),
    ip="203.0.113.50",
    scheme="https",
    ssl=True,
)
BLOCKED = RequestFields(**{**{f: getattr(BENIGN, f) for f in BENIGN.__slots__}, "path": "/blocked"})


def main() -> None:
    rules = [Rule(f"r{i}", e, Action.BLOCK) for i, e in enumerate(EXPRESSIONS)]
    phases = {Phase.HTTP_REQUEST_FIREWALL_CUSTOM: (compile_ruleset(Phase.HTTP_REQUEST_FIREWALL_CUSTOM, rules),)}
    assert not evaluate_request(BENIGN, phases).terminated
    assert evaluate_request(BLOCKED, phases).rule_id == "r24"
    cached = FieldValues(BENIGN)
    evaluate_request(cached, phases)
    cases: tuple[tuple[str, RequestFields | FieldValues], ...] = (
        ("common path (no match, 25 rules)", BENIGN),
        ("blocked by rule 25", BLOCKED),
        ("common path, field values already cached (rules only)", cached),
    )
    for label, request in cases:
        number = 20_000

        def once(r: RequestFields | FieldValues = request) -> None:
            evaluate_request(r, phases)

        runs = timeit.repeat(once, number=number, repeat=7)
        per = [t / number * 1e6 for t in runs]
        print(f"{label}: best {min(per):.2f} µs/request, median {statistics.median(per):.2f} µs/request")


if __name__ == "__main__":
    main()
