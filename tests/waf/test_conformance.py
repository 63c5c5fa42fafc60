"""Differential conformance: our parser against the real wirefilter parser (octorules-wirefilter).

Every expression of ``corpus.txt`` (one per line, ``<TAB>`` stands for a tab) plus the generated
limit cases must be accepted by both parsers or rejected by both. ``DIVERGENCES`` lists the cases
where we follow Cloudflare's documented behaviour and the oracle (a wirefilter build with stub
function signatures, spec §1.11) does not; each entry says why.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from originlock.testing.require import require_or_skip
from originlock.waf import ParseError, parse

CORPUS = Path(__file__).with_name("corpus.txt")

_DOCS_SIGNATURE = "Cloudflare documents this signature; the oracle's stub signature differs (spec §1.11)"
_TRANSFORM_ONLY = "transform/redirect-only function, refused in WAF custom rules (spec §1.10)"
_NOT_DOCUMENTED = "function exists only in the octorules scheme, not in Cloudflare's WAF docs (spec §1.10)"
_BOOL_CONST = "Cloudflare accepts `true` (API examples for execute rules); OSS wirefilter does not (spec §1.2)"
_RANGE = "Cloudflare limits cidr() bit counts (v4 1-32, v6 1-128); the oracle stub does not check values"
_LENGTH = "Cloudflare's API limit is 4096 characters (spec §1.7); the oracle allows up to 1 MiB"

DIVERGENCES: dict[str, str] = {
    'lookup_json_string(http.request.body.raw, 0) eq "v"': _DOCS_SIGNATURE,
    'lookup_json_string(http.request.body.raw, "a", "b") eq "v"': _DOCS_SIGNATURE,
    'lookup_json_integer(http.request.body.raw, "a", 0) eq 1': _DOCS_SIGNATURE,
    'url_decode(http.request.uri.query, "r") contains "a"': _DOCS_SIGNATURE,
    'len(http.request.headers["x"]) gt 0': _DOCS_SIGNATURE,
    "len(http.request.headers.names) gt 0": _DOCS_SIGNATURE,
    'substring(http.host, 1) eq "b"': _DOCS_SIGNATURE,
    'substring(http.host, -1) eq "b"': _DOCS_SIGNATURE,
    'is_timed_hmac_valid_v0("secret", http.request.uri, 100000, http.request.timestamp.sec, 8)': _DOCS_SIGNATURE,
    'is_timed_hmac_valid_v0("secret", http.request.uri, 100000, http.request.timestamp.sec)': _DOCS_SIGNATURE,
    "true": _BOOL_CONST,
    "false": _BOOL_CONST,
    "true and ssl": _BOOL_CONST,
    "not false": _BOOL_CONST,
    "cidr(ip.src, 33, 64) eq 1.2.3.0": _RANGE,
    "cidr6(ip.src, 0) eq ::": _RANGE,
    'to_string(cf.edge.server_port) eq "5"': _TRANSFORM_ONLY,
    'regex_replace(http.host, "a", "b") eq "b"': _TRANSFORM_ONLY,
    'split(http.host, ",", 2)[0] eq "a"': _TRANSFORM_ONLY,
    'uuidv4(cf.random_seed) eq "a"': _TRANSFORM_ONLY,
    'wildcard_replace(http.host, "*", "b") eq "b"': _TRANSFORM_ONLY,
    'remove_query_args(http.request.uri.query, "a") eq "b"': _TRANSFORM_ONLY,
    'has_key(http.request.headers, "x")': _NOT_DOCUMENTED,
    'has_value(http.request.headers.names, "x")': _NOT_DOCUMENTED,
    'ip_in_range(ip.src, "1.2.3.0/24")': _NOT_DOCUMENTED,
    'wildcard(http.host, "*.a")': _NOT_DOCUMENTED,
    'contains(http.host, "a")': _NOT_DOCUMENTED,
    'coalesce(http.host, "a") eq "a"': _NOT_DOCUMENTED,
    'trim(http.host) eq "a"': _NOT_DOCUMENTED,
    'sha512(http.host) eq "a"': _NOT_DOCUMENTED,
    "bit_slice(http.host, 0, 8) eq 1": _NOT_DOCUMENTED,
}


def _generated() -> list[str]:
    """Limit cases: nesting 128 vs 129 for each nesting construct, and the length limit."""
    out = []
    for n in (127, 128, 129):
        out.append("(" * n + "ssl" + ")" * n)
        out.append("not " * n + "ssl")
        out.append("lower(" * n + "http.host" + ")" * n + ' eq "a"')
        out.append("any(" + "(" * (n - 1) + 'http.request.headers.names[*] eq "a"' + ")" * (n - 1) + ")")
    filler = " or ".join(['http.host eq "x"'] * 400)
    out.append(filler[:4080] + "")  # may end mid-token: both must reject or accept alike
    return out


def _cases() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").split("\n")
    return [line.replace("<TAB>", "\t") for line in lines if line] + _generated()


CASES = _cases()
_LONG = 'http.host eq "' + "a" * 4090 + '"'
DIVERGENCES[_LONG] = _LENGTH
CASES.append(_LONG)


def _oracle() -> Any:
    available = importlib.util.find_spec("octorules_wirefilter") is not None
    require_or_skip(available, "octorules-wirefilter is not installed (test-only dependency)")
    import octorules_wirefilter

    return octorules_wirefilter


def test_corpus_is_large_enough() -> None:
    assert len(set(CASES)) >= 300


def _accepts(expression: str) -> bool:
    try:
        parse(expression)
    except ParseError:
        return False
    return True


def test_accept_reject_agrees_with_wirefilter() -> None:
    oracle = _oracle()
    disagreements = []
    for expression in CASES:
        theirs = "error" not in oracle.parse_expression(expression)
        ours = _accepts(expression)
        if expression in DIVERGENCES:
            assert ours != theirs, f"listed divergence no longer diverges: {expression!r}"
            continue
        if ours != theirs:
            disagreements.append((expression, "oracle accepts" if theirs else "we accept"))
    assert disagreements == []


def test_both_sides_are_exercised() -> None:
    accepted = sum(_accepts(e) for e in CASES)
    assert 100 < accepted < len(CASES) - 100


@pytest.mark.parametrize(
    ("expression", "column", "message"),
    [
        ('http.host eq "a\\nb"', 17, 'expected ", xHH or OOO after \\'),
        ('http.host\teq "a"', 10, "expected ComparisonOp"),
        ("ip.src in {1.2.3.4/24}", 12, "host part of address was not zero"),
        ('http.host wildcard "a**b"', 20, "wildcard contains a double star"),
        ("cf.edge.server_port in {5..1}", 25, "incompatible range bounds"),
        ('starts_with("abc","a")', 13, "invalid kind of argument #0: expected argument of kind Field, but got Literal"),
        ('http.request.headers["x"][*] eq "y"', 36, "expected value of type Bool, but got Array<Bool>"),
        ("http.unknown eq 1", 1, "unknown identifier"),
        ('http.host eq "a" #', 17, "unrecognised input"),
    ],
)
def test_error_positions_match_wirefilter(expression: str, column: int, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(expression)
    assert (info.value.line, info.value.column, info.value.message) == (1, column, message)
    oracle = _oracle()
    assert f"(1:{column})" in oracle.parse_expression(expression)["error"]
