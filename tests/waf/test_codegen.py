"""Generated code (``codegen.py``) agrees with the closure compiler, the reference semantics.

Three levels: every evaluation case of ``test_eval.py`` and the benchmark ruleset against several
requests; Hypothesis expressions (the parser-property generator) against the same requests; and
the ruleset scan (fields loaded directly, dependencies first) against a rule-by-rule loop.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import re2
from hypothesis import given, settings

from originlock.waf import FieldValues, ParseError, RequestFields, parse
from originlock.waf.compiler import compile_expression, compile_reference, compile_scan
from originlock.waf.regex import _compile_re2, _literal_fast_path, to_re2

from .test_eval import FALSE_CASES, REQUEST, TRUE_CASES
from .test_properties import _EXPR

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from waf_eval import BENIGN, BLOCKED, EXPRESSIONS

REQUESTS = [
    REQUEST,
    BENIGN,
    BLOCKED,
    RequestFields(method="GET", host="h", path="/"),
    RequestFields(
        method="TRACE",
        host="admin.example.com",
        path="/wp-login.php/../.git/x.env",
        query="a=<SCRIPT>&q=union select",
        headers=((b"X-Debug", b"1"), (b"x-forwarded-host", b"evil"), (b"X-Forwarded-Host", b"www.example.com")),
        ip="2001:db8::1",
        http_version="HTTP/1.0",
        extra={"cf.waf.score": 5, "cf.bot_management.verified_bot": True, "ip.src.country": b"KP"},
    ),
    RequestFields(method="POST", host="x.internal.example.com", path="/ADMIN/a", ip="10.1.2.3", headers=()),
    RequestFields(method="GET", host="h", path="/", ip="not-an-ip", extra={"http.user_agent": b"masscan"}),
]
EXTRA = [
    'http.request.uri.path matches "^/wp-(admin|login)\\.php"',
    'http.request.uri.query matches "(?i)<script"',
    'http.request.headers["x-forwarded-host"][1] eq "www.example.com"',
    "cf.waf.score ge 5 and cf.waf.score le 5 and cf.waf.score gt 4",
    "ip.src in {10.0.0.0/8 2001:db8::/32 192.0.2.1..192.0.2.9 1.2.3.4}",
    "ip.src lt 11.0.0.0 and ip.src ge 10.0.0.0",
    'any(http.request.headers.names[*] contains "Debug")',
    "len(http.request.headers.names) gt 2 xor ssl",
    'upper(http.request.method) in {"TRACE"}',
    'ends_with(lower(http.host), ".example.com")',
    'http.request.uri.path strict wildcard "/ADMIN/*"',
    'http.request.uri.path wildcard "/admin/*"',
    'http.host wildcard ""',
    'http.host wildcard "*"',
    'http.host strict wildcard "x.*.com"',
    'http.host wildcard "H"',
    'http.request.uri.path wildcard r"*\\*"',
    "cf.waf.score in {1..4 9}",
]
ALL = TRUE_CASES + FALSE_CASES + EXPRESSIONS + EXTRA


def _agree(text: str, **options: object) -> None:
    node = parse(text)
    generated = compile_expression(node, **options)  # type: ignore[arg-type]
    reference = compile_reference(node, **options)  # type: ignore[arg-type]
    assert "def predicate(v):" in generated.source  # type: ignore[attr-defined]
    for request in REQUESTS:
        expected = reference(FieldValues(request))
        assert generated(FieldValues(request)) is expected, (text, request, getattr(generated, "source", ""))


@pytest.mark.parametrize("text", ALL)
def test_generated_predicate_agrees_with_reference(text: str) -> None:
    _agree(text)
    _agree(text, nil_not_equal=True)


@settings(max_examples=300, deadline=None)
@given(_EXPR)
def test_generated_agrees_on_random_expressions(text: str) -> None:
    try:
        parse(text)
    except ParseError:
        return
    _agree(text)


@pytest.mark.parametrize("seed", range(20))
def test_ruleset_scan_finds_the_first_matching_rule(seed: int) -> None:
    texts = random.Random(seed).sample(ALL, 25)
    nodes = [parse(t) for t in texts]
    scan = compile_scan(nodes, native=False)
    references = [compile_reference(n) for n in nodes]
    for request in REQUESTS:
        expected = next((i for i, p in enumerate(references) if p(FieldValues(request))), -1)
        values = FieldValues(request)
        assert scan(values) == expected, (texts, request, getattr(scan, "source", ""))
        assert scan(values) == expected  # again, every field now cached


def test_scan_stores_fields_like_missing_does() -> None:
    values = FieldValues(BENIGN)
    compile_scan([parse(e) for e in EXPRESSIONS], native=False)(values)
    for name, value in list(values.items()):
        assert FieldValues(BENIGN)[name] == value, name


@pytest.mark.parametrize(
    "pattern",
    [
        "^/wp-(admin|login)\\.php",
        "(?i)<script",
        "abc",
        "^abc$",
        "(?:x|y)z$",
        "(|x)y",
        "a\\.b",
        "(?i)(Ab|cD)e",
        "^(a|ab)$",
        "(?i)^X",
        "",
        "^$",
        "\\$",
        "a\\/b",
        "a\\-b",
    ],
)
def test_literal_regex_fast_path_agrees_with_re2(pattern: str) -> None:
    fast = _literal_fast_path(pattern)
    assert fast is not None
    compiled = _compile_re2(to_re2(pattern))
    alphabet = [b"a", b"b", b"A", b"X", b"x", b"z", b".", b"/wp-admin.php", b"/wp-login.php", b"<script"]
    alphabet += [b"<SCRIPT", b"\xe9", b"\xc9", b"e", b"c", b"D", b"$", b"\\", b"\n", b"/", b"-", b"<"]
    rng = random.Random(pattern)
    for _ in range(2000):
        value = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        expected = compiled._regexp.Match(re2._Anchor.UNANCHORED, value, 0, len(value))[0] != (-1, -1)
        assert fast(value) == expected, (pattern, value)


@pytest.mark.parametrize("pattern", ["a|b", "\\d", "\\<a", "(a|b)?", "^(a(b))", "(?i:abc)", "é", "a\\\\$", "(abc"])
def test_literal_regex_fast_path_refuses_real_regexes(pattern: str) -> None:
    assert _literal_fast_path(pattern) is None


def test_host_that_idna_refuses_does_not_raise() -> None:
    # Fields are computed before a rule is tested, so an un-encodable Host must not make evaluation raise.
    request = RequestFields(method="GET", host="a" * 70 + "ü.test", path="/")
    predicate = compile_expression(parse('http.host eq "example.test" or http.request.method eq "GET"'))
    assert predicate(FieldValues(request)) is True
