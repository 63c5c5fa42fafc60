"""Typed AST -> the compiled evaluator's objects (``evaluator.py``): a ruleset's scan without generated code.

The shapes turned into evaluator tests are those ``codegen.py`` inlines, restricted to a plain field or
``lower``/``upper`` of one as the subject: ``eq``, ``ne`` and the order comparisons with a literal,
``contains``, ``in {…}`` (values, Int and IP ranges), ``matches``/``wildcard``/``in $list`` through the
reference's test function, ``starts_with``/``ends_with`` with a literal, a Bool field alone, and ``and``,
``or``, ``xor``, ``not`` of those. Anything else (indexes, ``[*]``, other functions, IP order comparisons,
the ``true``/``false`` constants) is the sub-expression's generated predicate, so every expression keeps
the reference's semantics (``compiler.py``; ``tests/waf/test_scan_plan.py`` compares them).

Prefilter groups (``prefilter.py``) become blocks: each run of a group's consecutive rules sits under the
group's test, as in the generated scan, so the first matching rule is the plain scan's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from . import evaluator as ev
from .ast import (
    BytesLit,
    CmpOp,
    Combining,
    Comparison,
    FieldRef,
    IndexExpr,
    IntLit,
    IntRange,
    IpCidr,
    IpLit,
    IpRange,
    ListRef,
    LogicalExpr,
    LogicalOp,
    Not,
    Parenthesized,
    SetLit,
)
from .fields import CONSTANT_FIELDS
from .prefilter import EQ, PREFIX, Group, Requirement
from .types import Kind

__all__ = ["build_scan"]

_FOLDS: Final = {"": ev.NONE, "lower": ev.LOWER, "upper": ev.UPPER}
_ORDER: Final = {CmpOp.NE: ev.NE, CmpOp.LT: ev.LT, CmpOp.LE: ev.LE, CmpOp.GT: ev.GT, CmpOp.GE: ev.GE}
#: Comparisons whose test is the reference's function of the value.
_CALLED: Final = (CmpOp.MATCHES, CmpOp.WILDCARD, CmpOp.STRICT_WILDCARD)


class Reference(Protocol):
    """What the builder needs of the closure compiler (``compiler._Compiler``)."""

    def test(self, node: Comparison) -> Callable[[Any], bool]: ...


class _Builder:
    def __init__(self, reference: Reference, predicate: Callable[[LogicalExpr], Callable[[Any], Any]]) -> None:
        self.reference = reference
        self.predicate = predicate

    def test(self, node: LogicalExpr) -> ev.Test:
        if node.type.kind is not Kind.BOOL:
            return self.fallback(node)
        if isinstance(node, Parenthesized):
            return self.test(node.expr)
        if isinstance(node, Not):
            return ev.Not(self.test(node.arg))
        if isinstance(node, Combining):
            parts = [self.test(item) for item in node.items]
            if node.op is LogicalOp.AND:
                return ev.All(parts)
            return ev.AnyOf(parts) if node.op is LogicalOp.OR else ev.Xor(parts)
        found = self.comparison(node)
        return self.fallback(node) if found is None else found

    def fallback(self, node: LogicalExpr) -> ev.Test:
        return ev.Predicate(self.predicate(node))

    def comparison(self, node: Comparison) -> ev.Test | None:
        lhs, op, rhs = node.lhs, node.op, node.rhs
        if op is CmpOp.IS_TRUE:
            return self.is_true(lhs)
        subject = _subject(lhs)
        if subject is None:
            return None
        name, fold = subject
        if op is CmpOp.EQ and isinstance(rhs, BytesLit | IntLit | IpLit):
            return ev.Equal(name, fold, rhs.value)
        if op is CmpOp.NE and isinstance(rhs, IpLit):
            # The reference: `ne` across families holds, and so does `!=` of the (family, int) tuples.
            return ev.Order(name, fold, ev.NE, rhs.value)
        if op in _ORDER and isinstance(rhs, BytesLit | IntLit):
            return ev.Order(name, fold, _ORDER[op], rhs.value)
        if op is CmpOp.CONTAINS and isinstance(rhs, BytesLit):
            return ev.Contains(name, fold, rhs.value)
        if op is CmpOp.IN and isinstance(rhs, SetLit):
            return _member(name, fold, rhs)
        if op in _CALLED or (op is CmpOp.IN and isinstance(rhs, ListRef)):
            return ev.Call(name, fold, self.reference.test(node))
        return None

    def is_true(self, lhs: IndexExpr) -> ev.Test | None:
        base = lhs.base
        if lhs.indexes or lhs.type.kind is not Kind.BOOL:
            return None
        if isinstance(base, FieldRef):
            return None if base.name in CONSTANT_FIELDS else ev.IsTrue(_name(base.name))
        if base.name not in ("starts_with", "ends_with") or base.maps_each or len(base.args) != 2:
            return None
        subject, affix = base.args
        found = _subject(subject) if isinstance(subject, IndexExpr) else None
        if found is None or not isinstance(affix, BytesLit):
            return None
        return ev.Affix(found[0], found[1], (affix.value,), base.name == "ends_with")


def _name(field: str) -> str:
    """The field's name interned, as the filler's keys are (compiled string literals): a dict lookup then
    finds the key by identity, without comparing the text."""
    return sys.intern(field)


def _subject(lhs: IndexExpr) -> tuple[str, int] | None:
    """(field, fold) of a plain field, or of ``lower``/``upper`` of one."""
    if lhs.indexes or lhs.map_each_count:
        return None
    base = lhs.base
    if isinstance(base, FieldRef):
        return None if base.name in CONSTANT_FIELDS else (_name(base.name), ev.NONE)
    if base.name not in ("lower", "upper") or base.maps_each or len(base.args) != 1:
        return None
    arg = base.args[0]
    if not isinstance(arg, IndexExpr) or arg.indexes or not isinstance(arg.base, FieldRef):
        return None
    if arg.base.name in CONSTANT_FIELDS:
        return None
    return _name(arg.base.name), _FOLDS[base.name]


def _member(name: str, fold: int, rhs: SetLit) -> ev.Test:
    """The reference's ``membership``: values, then ranges (IP ranges by family)."""
    singles = frozenset(item.value for item in rhs.items if isinstance(item, BytesLit | IntLit | IpLit))
    ints: list[tuple[int, int]] = []
    ips: list[tuple[int, int, int]] = []
    for item in rhs.items:
        if isinstance(item, IntRange):
            ints.append((item.low, item.high))
        elif isinstance(item, IpRange | IpCidr):
            ips.append((item.low[0], item.low[1], item.high[1]))
    return ev.Member(name, fold, singles, ints, ips)


def _guard(test: Requirement) -> ev.Test:
    """A prefilter group's test (``prefilter.holds``)."""
    fold, name = _FOLDS[test.fold], _name(test.field)
    if test.kind == EQ:
        return ev.Member(name, fold, frozenset(test.literals), [], [])
    if test.kind == PREFIX:
        return ev.Affix(name, fold, test.literals, False)
    return ev.Contains(name, fold, test.literals[0])


def build_scan(
    nodes: Sequence[LogicalExpr],
    groups: Sequence[Group],
    reference: Reference,
    predicate: Callable[[LogicalExpr], Callable[[Any], Any]],
) -> ev.RuleScan:
    """The scan of a ruleset's expressions (``groups``: from ``prefilter.group_rules``, or none).

    ``reference`` gives the test functions of ``matches``, wildcards and lists; ``predicate`` compiles any
    sub-expression the evaluator has no test for.

    Raises:
        CompileError: an unknown list (from ``reference``).
    """
    builder = _Builder(reference, predicate)
    tests = [builder.test(node) for node in nodes]
    group_of = {index: g for g, group in enumerate(groups) for index in group.members}
    guards = [_guard(group.test) for group in groups]
    blocks: list[ev.Block] = []
    index = 0
    while index < len(tests):
        g = group_of.get(index)
        run = [index]
        # A run: a group's consecutive members, or consecutive rules of no group.
        while run[-1] + 1 < len(tests) and group_of.get(run[-1] + 1) == g:
            run.append(run[-1] + 1)
        blocks.append(ev.Block(None if g is None else guards[g], [tests[i] for i in run], run))
        index = run[-1] + 1
    return ev.RuleScan(blocks)
