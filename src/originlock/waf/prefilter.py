"""Groups of a ruleset's rules that one cheap test can skip together.

Theory of operation. Many rules of a ruleset test the same field against literals: five
``http.request.uri.path eq "/adminN"``, five ``starts_with(http.request.uri.path, "/wp-N")``, five
``http.request.uri.query contains "union select N"``. Each rule has a *requirement* when its expression
can only be true if one field's value (optionally ``lower()``/``upper()`` of it) equals one of some
literals, starts with one of some literals, or contains one of some literals. Rules with requirements of
the same kind on the same value form a *group*, and the group's test is implied by every member's
requirement: ``value in {…}``, ``value.startswith((…))``, ``value.find(common) >= 0`` where ``common`` is a
substring of every member's literal. When the group's test is false no member can match, so the generated
scan (``codegen.build``) skips them all with one test instead of one per rule; when it is true the members
are tested one by one as before. The first matching rule is the same either way: skipping is exact because
each requirement is a *necessary* condition of its rule (a rule that could match is never skipped).

What gives a requirement (anything else gives none, and the rule is tested on its own):
``f eq "lit"``, ``f in {"a" "b"}``, ``f contains "lit"``, ``starts_with(f, "lit")``, ``f matches "^lit…"``
(``regex.anchored_prefix``), ``f wildcard "lit*…"`` (case folded) and ``f strict wildcard "lit*…"`` for a
plain Bytes field ``f`` or ``lower(f)``/``upper(f)``; an ``and`` has the requirement of its first part
that has one. ``or``, ``not``, ``xor``, indexes, ``[*]`` and ``ne`` give none.

Pure: no I/O. ``holds`` evaluates a requirement over plain values (the tests' reference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .ast import (
    BytesLit,
    CmpOp,
    Combining,
    Comparison,
    FieldRef,
    FunctionCall,
    IndexExpr,
    LogicalExpr,
    LogicalOp,
    Parenthesized,
    RegexLit,
    SetLit,
    WildcardLit,
)
from .fields import CONSTANT_FIELDS
from .regex import anchored_prefix
from .types import Kind
from .wildcard import split_wildcard

__all__ = ["CONTAINS", "EQ", "PREFIX", "Group", "Requirement", "group_rules", "holds", "requirement"]

EQ: Final = "eq"
PREFIX: Final = "prefix"
CONTAINS: Final = "contains"
_FOLDS: Final = ("lower", "upper")
MIN_COMMON: Final = 3
"""Shortest common substring worth a group of ``contains`` rules (a shorter one filters too little)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """A rule can match only if ``fold(field)`` equals, starts with or contains one of ``literals``."""

    field: str
    fold: str
    """``""``, ``"lower"`` or ``"upper"``: the bytes method applied to the field's value first."""
    kind: str
    literals: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Group:
    """Rules (``members``: indexes in the ruleset) whose requirements imply one test on one value."""

    test: Requirement
    """Implied by each member's requirement. EQ: the members' values; PREFIX: their prefixes; CONTAINS: one
    substring of every member's literal."""
    members: tuple[int, ...]


def _subject(lhs: IndexExpr) -> tuple[str, str] | None:
    """(field, fold) of a plain Bytes field or ``lower``/``upper`` of one."""
    if lhs.indexes or lhs.type.kind is not Kind.BYTES:
        return None
    base = lhs.base
    if isinstance(base, FieldRef):
        return None if base.name in CONSTANT_FIELDS else (base.name, "")
    if base.name not in _FOLDS or len(base.args) != 1:
        return None
    arg = base.args[0]
    if not isinstance(arg, IndexExpr) or arg.indexes or not isinstance(arg.base, FieldRef):
        return None
    if arg.base.name in CONSTANT_FIELDS or arg.type.kind is not Kind.BYTES:
        return None
    return arg.base.name, base.name


def _starts_with(call: FunctionCall) -> Requirement | None:
    if call.name != "starts_with" or call.maps_each or len(call.args) != 2:
        return None
    subject, affix = call.args
    if not isinstance(subject, IndexExpr) or not isinstance(affix, BytesLit):
        return None
    found = _subject(subject)
    return None if found is None else Requirement(found[0], found[1], PREFIX, (affix.value,))


def _comparison(node: Comparison) -> Requirement | None:
    lhs, op, rhs = node.lhs, node.op, node.rhs
    if op is CmpOp.IS_TRUE:
        base = lhs.base
        return _starts_with(base) if isinstance(base, FunctionCall) and not lhs.indexes else None
    found = _subject(lhs)
    if found is None:
        return None
    field, fold = found
    if op is CmpOp.EQ and isinstance(rhs, BytesLit):
        return Requirement(field, fold, EQ, (rhs.value,))
    if op is CmpOp.IN and isinstance(rhs, SetLit) and rhs.items:
        members = tuple(item.value for item in rhs.items if isinstance(item, BytesLit))
        return Requirement(field, fold, EQ, members) if len(members) == len(rhs.items) else None
    if op is CmpOp.CONTAINS and isinstance(rhs, BytesLit):
        return Requirement(field, fold, CONTAINS, (rhs.value,))
    if op is CmpOp.MATCHES and isinstance(rhs, RegexLit):
        prefix = anchored_prefix(rhs.pattern)
        return Requirement(field, fold, PREFIX, (prefix,)) if prefix else None
    if op in (CmpOp.WILDCARD, CmpOp.STRICT_WILDCARD) and isinstance(rhs, WildcardLit) and not fold:
        segments = split_wildcard(rhs.pattern)
        if op is CmpOp.WILDCARD:
            # `wildcard` folds ASCII case of both sides (wildcard.compile_wildcard): a test on lower(f).
            fold, segments = "lower", tuple(segment.lower() for segment in segments)
        if len(segments) == 1:
            return Requirement(field, fold, EQ, segments)
        return Requirement(field, fold, PREFIX, (segments[0],)) if segments[0] else None
    return None


def requirement(node: LogicalExpr) -> Requirement | None:
    """A necessary condition of ``node`` (None: none this module recognises)."""
    while isinstance(node, Parenthesized):
        node = node.expr
    if node.type.kind is not Kind.BOOL:
        return None
    if isinstance(node, Comparison):
        return _comparison(node)
    if isinstance(node, Combining) and node.op is LogicalOp.AND:
        for item in node.items:
            found = requirement(item)
            if found is not None:
                return found
    return None


def _common(a: bytes, b: bytes) -> bytes:
    """The longest substring of both (the first one of ``a`` on a tie); literals are short."""
    best = b""
    for i in range(len(a)):
        for j in range(len(a), i + len(best), -1):
            if b.find(a[i:j]) >= 0:
                best = a[i:j]
                break
    return best


def group_rules(nodes: Sequence[LogicalExpr]) -> list[Group]:
    """The groups of two or more rules among ``nodes`` (a ruleset's expressions, in order); a rule is in at
    most one group, and groups are in the order of their first member."""
    buckets: dict[tuple[str, str, str], list[tuple[int, tuple[bytes, ...]]]] = {}
    for index, node in enumerate(nodes):
        found = requirement(node)
        if found is not None:
            buckets.setdefault((found.field, found.fold, found.kind), []).append((index, found.literals))
    groups: list[Group] = []
    for (field, fold, kind), members in buckets.items():
        if kind != CONTAINS:
            if len(members) > 1:
                literals = tuple(dict.fromkeys(lit for _, lits in members for lit in lits))
                groups.append(Group(Requirement(field, fold, kind, literals), tuple(i for i, _ in members)))
            continue
        # Contains: runs that share a substring of MIN_COMMON bytes or more, greedily in rule order.
        runs: list[tuple[bytes, list[int]]] = []
        for index, (literal,) in members:
            if runs:
                common = _common(runs[-1][0], literal)
                if len(common) >= MIN_COMMON:
                    runs[-1] = (common, [*runs[-1][1], index])
                    continue
            runs.append((literal, [index]))
        groups += [Group(Requirement(field, fold, kind, (common,)), tuple(run)) for common, run in runs if len(run) > 1]
    return sorted(groups, key=lambda group: group.members[0])


def holds(test: Requirement, values: Mapping[str, Any]) -> bool:
    """A requirement or a group's test over field values (what the generated scan computes for a group):
    False means no rule it is implied by can match. ``values[field]`` must give the field's value
    (``FieldValues`` computes it)."""
    value = values[test.field]
    if value is None:
        return False
    if test.fold:
        value = value.lower() if test.fold == "lower" else value.upper()
    if test.kind == EQ:
        return value in test.literals
    if test.kind == PREFIX:
        return bool(value.startswith(test.literals))
    return bool(value.find(test.literals[0]) >= 0)
