"""Prefilter groups (``waf/prefilter.py``) skip only rules that cannot match.

Three levels: ``regex.anchored_prefix`` against RE2 (every match starts with the prefix); each rule's
requirement against the reference predicate (a rule that matches always meets its requirement); and the
generated scan with groups against the scan without them, over random rulesets of CRS-style and
case-folding rules and random requests built from the rules' own literals in mixed case.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pytest

from originlock.waf import FieldValues, RequestFields, parse
from originlock.waf.compiler import compile_reference, compile_scan
from originlock.waf.prefilter import CONTAINS, EQ, PREFIX, Group, Requirement, group_rules, holds, requirement
from originlock.waf.regex import _compile_re2, anchored_prefix, to_re2

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from product_vs_nginx import WAF_RULES
from waf_eval import EXPRESSIONS

RULES = [
    *WAF_RULES,
    *EXPRESSIONS,
    'lower(http.user_agent) contains "sqlmap"',
    'lower(http.user_agent) contains "sqlmap/1"',
    'upper(http.user_agent) contains "NIKTO"',
    'lower(http.user_agent) contains "Nikto"',  # never matches: lower() has no capitals
    'http.request.uri.path wildcard "/ADMIN/*"',
    'http.request.uri.path wildcard "/admin/*.php"',
    'http.request.uri.path strict wildcard "/Admin/*"',
    'http.request.uri.path wildcard "/login"',
    'http.request.uri.path strict wildcard "/login"',
    'http.request.uri.path matches "^/wp-(admin|login)\\.php"',
    'http.request.uri.path matches "^/\\.git"',
    'http.request.uri.path matches "^/wp-a?dmin"',
    'http.request.uri.path matches "^/api|^/wp-"',
    'http.request.uri.path matches "(?i)^/WP-"',
    'lower(http.request.uri.path) matches "^/wp-"',
    'starts_with(lower(http.request.uri.path), "/wp-")',
    'starts_with(http.request.uri.path, "/wp-adm")',
    'http.request.uri.path in {"/admin0" "/xmlrpc.php"}',
    'lower(http.host) eq "blocked.waf.test"',
    'upper(http.request.method) in {"TRACE" "TRACK"}',
    'http.request.method eq "TRACK" and http.request.uri.path eq "/"',
    'http.request.uri.path eq "/admin1" or http.request.uri.path eq "/other"',
    'not http.request.uri.path eq "/admin2" and http.host eq "x.internal.example.com"',
    '(http.request.uri.query contains "union select 1") and ssl',
    'http.request.uri.query contains "union"',
    'http.request.uri.query contains "select"',
    'http.request.uri.query contains "selection"',
    'http.referer contains "spam.example" and http.referer contains "x"',
    'http.request.uri.path contains "/a"',
    'http.request.uri.path contains "wp"',
]

#: Pieces of requests: the rules' literals in several spellings, and others.
PATHS = [
    "/",
    "/admin0",
    "/admin1",
    "/ADMIN0",
    "/admin/x",
    "/Admin/x",
    "/admin/a.php",
    "/wp-0",
    "/WP-1x",
    "/wp-admin.php",
    "/wp-login.php",
    "/wp-dmin",
    "/wp-amin",
    "/.git/config",
    "/.GIT",
    "/login",
    "/LOGIN",
    "/xmlrpc.php",
    "/api/v1",
    "/x.env",
    "/products/42",
    "/blocked",
    "/a%2e%2e/b",
]
QUERIES = ["", "a=1", "q=union select 1", "q=UNION SELECT 2", "union", "selection", "x=<script>", "union select 4"]
AGENTS = [None, "Mozilla/5.0", "scanner0", "xscanner3y", "SQLMap/1.0", "sqlmap/1.7", "Nikto", "NIKTO/2", "scan"]
REFERERS = [None, "https://spam.example/x", "https://spam.example/", "https://ham.example/"]
HOSTS = ["a.waf.test", "blocked.waf.test", "BLOCKED.waf.test", "admin.example.com", "x.internal.example.com"]
METHODS = ["GET", "POST", "TRACE", "trace", "TRACK"]
IPS = ["127.0.0.1", "192.0.2.10", "198.51.100.7", "2001:db8::1", "10.0.0.1"]


def _request(rng: random.Random) -> RequestFields:
    headers = []
    agent, referer = rng.choice(AGENTS), rng.choice(REFERERS)
    if agent is not None:
        headers.append((b"User-Agent", agent.encode()))
    if referer is not None:
        headers.append((b"Referer", referer.encode()))
    return RequestFields(
        method=rng.choice(METHODS),
        host=rng.choice(HOSTS),
        path=rng.choice(PATHS),
        query=rng.choice(QUERIES),
        headers=tuple(headers),
        ip=rng.choice(IPS),
        scheme="https",
        ssl=rng.random() < 0.5,
    )


REQUESTS = [_request(random.Random(seed)) for seed in range(400)]


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("^/\\.git", b"/.git"),
        ("^/wp-(admin|login)\\.php", b"/wp-"),
        ("^ab?", b"a"),
        ("^ab*", b"a"),
        ("^ab{0,2}", b"a"),
        ("^a+b", b"a"),
        ("^abc$", b"abc"),
        ("^a\\db", b"a"),
        ("^a\\-b", b"a-b"),
        ("^ab|c", b""),
        ("^a(b|c)|d", b""),
        ("^a[|]", b""),
        ("(?i)^ab", b""),
        ("(?m)^ab", b""),
        ("abc", b""),
        ("^(ab)", b""),
        ("^.a", b""),
        ("^\u00e9", b""),
    ],
)
def test_anchored_prefix(pattern: str, prefix: bytes) -> None:
    assert anchored_prefix(pattern) == prefix
    regex = _compile_re2(to_re2(pattern))
    for value in [b"", b"a", b"ab", b"abc", b"ac", b"c", b"d", b"/.git", b"/wp-admin.php", b"a-b", b"aab", b"\nab"]:
        if regex.search(value) is not None:
            assert value.startswith(prefix), (pattern, value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('http.request.uri.path eq "/a"', Requirement("http.request.uri.path", "", EQ, (b"/a",))),
        ('http.host in {"a" "b"}', Requirement("http.host", "", EQ, (b"a", b"b"))),
        ('lower(http.user_agent) contains "x"', Requirement("http.user_agent", "lower", CONTAINS, (b"x",))),
        ('starts_with(upper(http.host), "A")', Requirement("http.host", "upper", PREFIX, (b"A",))),
        ('http.request.uri.path matches "^/\\.git"', Requirement("http.request.uri.path", "", PREFIX, (b"/.git",))),
        # Regex strings keep their backslashes: this one is a slash, a backslash, any byte, "git".
        ('http.request.uri.path matches "^/\\\\.git"', Requirement("http.request.uri.path", "", PREFIX, (b"/\\",))),
        ('http.host wildcard "A*.com"', Requirement("http.host", "lower", PREFIX, (b"a",))),
        ('http.host wildcard "A.com"', Requirement("http.host", "lower", EQ, (b"a.com",))),
        ('http.host strict wildcard "A*"', Requirement("http.host", "", PREFIX, (b"A",))),
        ('ssl and http.host eq "a"', Requirement("http.host", "", EQ, (b"a",))),
        ('(http.host eq "a")', Requirement("http.host", "", EQ, (b"a",))),
        ('http.host eq "a" or http.host eq "b"', None),
        ('not http.host eq "a"', None),
        ('http.host ne "a"', None),
        ('http.host wildcard "*.com"', None),
        ('http.request.uri.path matches "(?i)^/a"', None),
        ('ends_with(http.host, "a")', None),
        ('http.request.headers["x"][0] eq "a"', None),
        ('any(http.request.headers.names[*] eq "a")', None),
        ('lower(lower(http.host)) eq "a"', None),
        ('url_decode(http.request.uri.query) contains "x"', None),
        ('lower(http.request.headers["x"][0]) eq "a"', None),
        ('lower(http.host) wildcard "a*"', None),
        ("starts_with(http.host, http.referer)", None),
        ("ssl and not ssl", None),
        ('http.request.method in {"GET" "POST"}', Requirement("http.request.method", "", EQ, (b"GET", b"POST"))),
    ],
)
def test_requirement(text: str, expected: Requirement | None) -> None:
    assert requirement(parse(text)) == expected


def test_groups_of_the_benchmark_ruleset() -> None:
    groups = group_rules([parse(text) for text in WAF_RULES])
    path = "http.request.uri.path"
    assert groups == [
        Group(Requirement(path, "", EQ, tuple(f"/admin{i}".encode() for i in range(5))), (0, 1, 2, 3, 4)),
        Group(Requirement(path, "", PREFIX, (*(f"/wp-{i}".encode() for i in range(5)), b"/\\")), (5, 6, 7, 8, 9, 22)),
        Group(Requirement("http.request.uri.query", "", CONTAINS, (b"union select ",)), (10, 11, 12, 13, 14)),
        Group(Requirement("http.user_agent", "", CONTAINS, (b"scanner",)), (15, 16, 17, 18, 19)),
    ]


@pytest.mark.parametrize("text", RULES)
def test_a_matching_rule_meets_its_requirement(text: str) -> None:
    node = parse(text)
    found = requirement(node)
    if found is None:
        return
    predicate = compile_reference(node)
    matched = 0
    for request in REQUESTS:
        if predicate(FieldValues(request)):
            matched += 1
            assert holds(found, FieldValues(request)), (text, request)
    # A contains group's test is a common substring of its members' literals.
    if found.kind == CONTAINS:
        common = Requirement(found.field, found.fold, CONTAINS, (found.literals[0][1:3],))
        assert holds(common, {found.field: b""}) is (found.literals[0][1:3] == b"")


def test_the_requests_match_rules() -> None:
    # The differential test below means something only if the requests make many rules match.
    references = [compile_reference(parse(text)) for text in RULES]
    matching = {i for i, p in enumerate(references) for r in REQUESTS if p(FieldValues(r))}
    assert len(matching) > len(RULES) * 2 // 3


@pytest.mark.parametrize("seed", range(40))
def test_scan_with_groups_finds_the_same_rule(seed: int) -> None:
    rng = random.Random(seed)
    texts = rng.sample(RULES, 30)
    nodes = [parse(text) for text in texts]
    grouped = compile_scan(nodes, native=False)
    plain = compile_scan(nodes, prefilter=False, native=False)
    assert group_rules(nodes), texts  # 30 of these rules always hold a group
    nested = re.compile(r"\n        if .*: return \d+")  # a rule under a group's test
    assert nested.search(grouped.source)  # type: ignore[attr-defined]
    assert not nested.search(plain.source)  # type: ignore[attr-defined]
    found = set()
    for request in REQUESTS:
        expected = plain(FieldValues(request))
        found.add(expected)
        assert grouped(FieldValues(request)) == expected, (texts, request, getattr(grouped, "source", ""))
    assert len(found) > 3


def test_group_runs_and_their_fields() -> None:
    # A group split by other rules keeps its test in a local; a field first read inside a skipped block is
    # read again after it.
    texts = [
        'http.request.uri.path eq "/a"',
        'http.request.uri.path eq "/b" and http.referer contains "r"',
        'http.referer contains "q"',
        'http.request.uri.path eq "/c"',
    ]
    scan = compile_scan([parse(text) for text in texts], native=False)
    source = scan.source  # type: ignore[attr-defined]
    assert "g0 = " in source and "    if g0:" in source
    assert source.count("'http.referer' in v") == 2
    for path, referer, expected in [
        ("/b", b"xr", 1),
        ("/x", b"q", 2),
        ("/c", None, 3),
        ("/b", b"q", 2),
        ("/z", None, -1),
    ]:
        headers = () if referer is None else ((b"Referer", referer),)
        values = FieldValues(RequestFields(method="GET", host="h", path=path, headers=headers))
        assert scan(values) == expected, (path, referer)
