"""The compiled evaluator's scans (``waf/scan_plan.py``, ``waf/evaluator.py``) agree with the reference.

Every expression of the codegen and prefilter tests, alone and in random rulesets with prefilter groups,
over their requests; Hypothesis expressions; and the shapes the evaluator must cover without falling back
to generated code (the benchmark's 25 rules). Run interpreted and on the compiled tree
(``ORIGINLOCK_EXPECT_COMPILED=1``), where ``compile_scan`` returns these scans by default.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings

from originlock.waf import FieldValues, ParseError, RequestFields, parse
from originlock.waf import evaluator as ev
from originlock.waf.compiler import compile_reference, compile_scan

from .test_codegen import ALL
from .test_codegen import REQUESTS as CODEGEN_REQUESTS
from .test_prefilter import REQUESTS as PREFILTER_REQUESTS
from .test_prefilter import RULES, WAF_RULES
from .test_properties import _EXPR

EXTRA = [
    'http.request.uri.path ne "/"',
    'http.request.uri.path lt "/b" and http.request.uri.path ge "/a"',
    'lower(http.request.uri.path) gt "/x" or upper(http.host) le "A"',
    "http.request.timestamp.msec in {1..500 999}",
    "http.request.timestamp.sec gt 5 xor ssl xor not ssl",
    "ip.src ne 192.0.2.1",
    "ip.src ne 2001:db8::1",
    "ip.src eq 192.0.2.1",
    "ip.src in {198.51.100.0/24 2001:db8::/32 10.0.0.0..10.255.255.255}",
    'ends_with(http.request.uri.path, ".php")',
    'ends_with(lower(http.request.uri.path), ".php") and not starts_with(upper(http.host), "X")',
    'http.user_agent contains ""',
    'http.request.method in {"GET" "HEAD"}',
    "true and ssl",
    "http.request.headers.truncated",
]
EXPRESSIONS = ALL + RULES + EXTRA
REQUESTS = CODEGEN_REQUESTS + PREFILTER_REQUESTS[:100]


def _first(references: Sequence[Callable[[FieldValues], object]], request: RequestFields) -> int:
    return next((i for i, p in enumerate(references) if p(FieldValues(request))), -1)


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_each_expression_agrees_with_the_reference(text: str) -> None:
    node = parse(text)
    scan = compile_scan([node], native=True)
    reference = compile_reference(node)
    assert isinstance(scan, ev.RuleScan)
    for request in REQUESTS:
        expected = 0 if reference(FieldValues(request)) else -1
        assert scan(FieldValues(request)) == expected, (text, request)


@pytest.mark.parametrize("seed", range(30))
def test_rulesets_with_groups_find_the_reference_rule(seed: int) -> None:
    rng = random.Random(seed)
    texts = rng.sample(RULES + EXTRA, 30)
    nodes = [parse(text) for text in texts]
    scan = compile_scan(nodes, native=True)
    plain = compile_scan(nodes, native=True, prefilter=False)
    references = [compile_reference(node) for node in nodes]
    found = set()
    for request in PREFILTER_REQUESTS + CODEGEN_REQUESTS:
        expected = _first(references, request)
        found.add(expected)
        values = FieldValues(request)
        assert scan(values) == expected, (texts, request)
        assert scan(values) == expected  # again, every field now cached
        assert plain(FieldValues(request)) == expected, (texts, request)
    assert len(found) > 2


@settings(max_examples=300, deadline=None)
@given(_EXPR)
def test_random_expressions_agree(text: str) -> None:
    try:
        node = parse(text)
    except ParseError:
        return
    scan = compile_scan([node], native=True)
    reference = compile_reference(node)
    for request in CODEGEN_REQUESTS:
        assert scan(FieldValues(request)) == (0 if reference(FieldValues(request)) else -1), text


def _tests(test: ev.Test) -> list[ev.Test]:
    parts = [test]
    if isinstance(test, ev.Not):
        parts += _tests(test.inner)
    if isinstance(test, ev.All | ev.AnyOf | ev.Xor):
        for part in test.parts:
            parts += _tests(part)
    return parts


def test_the_benchmark_rules_need_no_generated_code() -> None:
    # The product benchmark's 25 rules (and the usual shapes around them) are evaluator tests throughout:
    # a generated predicate is interpreted code again.
    scan = compile_scan([parse(text) for text in [*WAF_RULES, *EXTRA[:12]]], native=True)
    assert isinstance(scan, ev.RuleScan)
    tests = [t for block in scan.blocks for test in block.tests for t in _tests(test)]
    assert not [t for t in tests if isinstance(t, ev.Predicate)]
    # The prefilter's groups: the five /adminN, the /wp-N with ^/\.git, union select, scanner.
    assert [block.indexes for block in scan.blocks if block.guard is not None][:4] == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
        [10, 11, 12, 13, 14],
        [15, 16, 17, 18, 19],
    ]


def test_other_shapes_keep_their_generated_predicate() -> None:
    scan = compile_scan([parse('http.request.headers["x"][0] eq "y" or ssl')], native=True)
    assert isinstance(scan, ev.RuleScan)
    (test,) = scan.blocks[0].tests
    assert isinstance(test, ev.AnyOf)
    assert isinstance(test.parts[0], ev.Predicate) and isinstance(test.parts[1], ev.IsTrue)
    values = FieldValues(RequestFields("GET", "h", "/", headers=((b"X", b"y"),)))
    assert scan(values) == 0


def test_compiled_builds_use_the_evaluator() -> None:
    scan = compile_scan([parse('http.host eq "a"')])
    assert isinstance(scan, ev.RuleScan) is ev.COMPILED
    if os.environ.get("ORIGINLOCK_EXPECT_COMPILED") == "1":
        assert ev.COMPILED
