"""Typed AST -> a tree of Python closures over ``FieldValues``.

Theory of operation. Every node becomes one closure, built once per rule:

- a *predicate* ``(values) -> bool`` for Bool nodes;
- a *vector* ``(values) -> list[bool]`` for Array<Bool> nodes (comparisons using ``[*]``),
  consumed by ``any()`` / ``all()`` or combined element-wise (shortest wins, as wirefilter);
- a *getter* ``(values) -> value | None`` for a field or call, or an *each-getter*
  ``(values) -> list[value]`` when the expression carries ``[*]``.

Missing values (``None``) make comparisons false (spec §1.6). ``ne`` on a missing value is false by
default, as Cloudflare's docs say; ``nil_not_equal=True`` gives wirefilter's default (true).
Literals are preprocessed here: sets become ``frozenset``s or range tuples, regexes are compiled
with RE2 (or reduced to ``bytes`` methods), wildcards become segment matchers.

This closure tree is the *reference* semantics. ``compile_expression`` and ``compile_scan`` return
generated code (``codegen.py``) that inlines the common shapes and calls these closures for the rest;
``compile_reference`` returns the closures alone, for the differential tests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any, Final

from . import regex
from .ast import (
    MAP_EACH,
    Argument,
    BytesLit,
    CmpOp,
    Combining,
    Comparison,
    FieldRef,
    FunctionCall,
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
    RegexLit,
    SetLit,
    WildcardLit,
)
from .builtins import IMPLEMENTATIONS
from .codegen import Emitter, build
from .evaluator import COMPILED
from .fields import CONSTANT_FIELDS
from .prefilter import group_rules
from .scan_plan import build_scan
from .types import Kind
from .wildcard import compile_wildcard

__all__ = [
    "CompileError",
    "Predicate",
    "Scan",
    "compile_expression",
    "compile_reference",
    "compile_scan",
    "compile_value",
]

Values = Mapping[str, Any]
Predicate = Callable[[Values], bool]
Vector = Callable[[Values], list[bool]]
Getter = Callable[[Values], Any]
Lists = Mapping[str, Iterable[str | int | bytes]]
Scan = Callable[[Values], int]
"""A ruleset's rules in one function: the index of the first matching rule, or -1."""

_ORDER: Final[dict[CmpOp, Callable[[Any, Any], bool]]] = {
    CmpOp.EQ: lambda a, b: a == b,
    CmpOp.NE: lambda a, b: a != b,
    CmpOp.LT: lambda a, b: a < b,
    CmpOp.LE: lambda a, b: a <= b,
    CmpOp.GT: lambda a, b: a > b,
    CmpOp.GE: lambda a, b: a >= b,
}


class CompileError(ValueError):
    """An expression that parsed but cannot be compiled, e.g. an unknown ``$list``."""


class _Compiler:
    def __init__(self, lists: Lists, nil_not_equal: bool) -> None:
        self.lists = lists
        self.nil_not_equal = nil_not_equal

    # --- logical ------------------------------------------------------------------------

    def logical(self, node: LogicalExpr) -> Predicate | Vector:
        if isinstance(node, Parenthesized):
            return self.logical(node.expr)
        if isinstance(node, Not):
            inner = self.logical(node.arg)
            if node.type.kind is Kind.ARRAY:
                vec: Any = inner
                return lambda v: [not x for x in vec(v)]
            pred: Any = inner
            return lambda v: not pred(v)
        if isinstance(node, Combining):
            parts = [self.logical(item) for item in node.items]
            if node.type.kind is Kind.ARRAY:
                return _vector_combine(node.op, parts)  # type: ignore[arg-type]
            return _combine(node.op, parts)  # type: ignore[arg-type]
        return self.comparison(node)

    def comparison(self, node: Comparison) -> Predicate | Vector:
        lhs = node.lhs
        if node.op is CmpOp.IS_TRUE:
            return self.is_true(lhs)
        test = self.test(node)
        missing = self.nil_not_equal and node.op is CmpOp.NE
        if lhs.map_each_count:
            each = self.each(lhs)
            return lambda v: [test(x) for x in each(v)]
        get: Getter
        if isinstance(lhs.base, FieldRef) and not lhs.indexes:
            get = itemgetter(lhs.base.name)
            if node.op is CmpOp.EQ or (node.op is CmpOp.IN and isinstance(node.rhs, SetLit)):
                # None never equals a literal nor is in a set of them: no missing check needed.
                literal = self.equality_literal(node)
                if literal is not None:
                    kind, value = literal
                    if kind == "eq":
                        return lambda v: get(v) == value
                    return lambda v: get(v) in value
        else:
            get = self.value(lhs)

        def compare(v: Values) -> bool:
            x = get(v)
            return missing if x is None else test(x)

        return compare

    def equality_literal(self, node: Comparison) -> tuple[str, Any] | None:
        rhs = node.rhs
        if isinstance(rhs, BytesLit | IntLit | IpLit):
            return "eq", rhs.value
        if isinstance(rhs, SetLit) and all(isinstance(i, BytesLit | IntLit | IpLit) for i in rhs.items):
            return "in", frozenset(i.value for i in rhs.items)  # type: ignore[union-attr]
        return None

    def is_true(self, lhs: IndexExpr) -> Predicate | Vector:
        if isinstance(lhs.base, FieldRef) and lhs.base.name in CONSTANT_FIELDS and not lhs.indexes:
            constant = CONSTANT_FIELDS[lhs.base.name]
            return lambda v: constant
        if lhs.map_each_count:
            each = self.each(lhs)
            return lambda v: [x is True for x in each(v)]
        get = self.value(lhs)
        if lhs.type.kind is Kind.ARRAY:
            return lambda v: list(get(v) or ())
        return lambda v: get(v) is True

    def test(self, node: Comparison) -> Callable[[Any], bool]:
        op, rhs, kind = node.op, node.rhs, node.lhs.type.kind
        if op is CmpOp.CONTAINS:
            assert isinstance(rhs, BytesLit)
            needle = rhs.value
            return lambda x: needle in x
        if op is CmpOp.MATCHES:
            assert isinstance(rhs, RegexLit)
            return regex.compile_regex(rhs.pattern)
        if op in (CmpOp.WILDCARD, CmpOp.STRICT_WILDCARD):
            assert isinstance(rhs, WildcardLit)
            return compile_wildcard(rhs.pattern, strict=op is CmpOp.STRICT_WILDCARD)
        if op is CmpOp.BITWISE_AND:
            assert isinstance(rhs, IntLit)
            mask = rhs.value
            return lambda x: (x & mask) != 0
        if op is CmpOp.IN:
            assert isinstance(rhs, SetLit | ListRef)
            return self.membership(kind, rhs)
        assert isinstance(rhs, BytesLit | IntLit | IpLit)
        compare = _ORDER[op]
        literal: Any = rhs.value
        if kind is Kind.IP:
            family = literal[0]
            ne = op is CmpOp.NE
            # v4 against v6 is incomparable: only `!=` holds (wirefilter matches_opt).
            return lambda x: compare(x, literal) if x[0] == family else ne
        return lambda x: compare(x, literal)

    def membership(self, kind: Kind, rhs: SetLit | ListRef) -> Callable[[Any], bool]:
        items = self.list_items(kind, rhs) if isinstance(rhs, ListRef) else rhs.items
        singles = frozenset(i.value for i in items if isinstance(i, BytesLit | IntLit | IpLit))
        ranges = tuple((i.low, i.high) for i in items if isinstance(i, IntRange | IpRange | IpCidr))
        if not ranges:
            return lambda x: x in singles
        if kind is Kind.IP:
            ip_ranges: tuple[tuple[Any, Any], ...] = ranges
            return lambda x: x in singles or any(lo[0] == x[0] and lo[1] <= x[1] <= hi[1] for lo, hi in ip_ranges)
        return lambda x: x in singles or any(lo <= x <= hi for lo, hi in ranges)

    def list_items(self, kind: Kind, ref: ListRef) -> tuple[Any, ...]:
        if ref.name not in self.lists:
            raise CompileError(f"unknown list ${ref.name}")
        out: list[Any] = []
        for item in self.lists[ref.name]:
            if kind is Kind.IP:
                net = ipaddress.ip_network(str(item), strict=False)
                out.append(IpRange((net.version, int(net.network_address)), (net.version, int(net.broadcast_address))))
            elif kind is Kind.INT:
                out.append(IntLit(int(item)))
            else:
                out.append(BytesLit(item if isinstance(item, bytes) else str(item).encode()))
        return tuple(out)

    # --- values -------------------------------------------------------------------------

    def base(self, base: FieldRef | FunctionCall) -> Getter:
        if isinstance(base, FieldRef):
            if base.name in CONSTANT_FIELDS:
                constant = CONSTANT_FIELDS[base.name]
                return lambda v: constant
            return itemgetter(base.name)
        return self.call(base)

    def value(self, node: IndexExpr) -> Getter:
        """Getter for an index expression without ``[*]``."""
        get = self.base(node.base)
        if not node.indexes:
            return get
        keys = tuple(i.encode() if isinstance(i, str) else i for i in node.indexes)

        def walk(v: Values) -> Any:
            x = get(v)
            for key in keys:
                if x is None:
                    return None
                x = x.get(key) if isinstance(key, bytes) else (x[key] if key < len(x) else None)  # type: ignore[operator]
            return x

        return walk

    def each(self, node: IndexExpr) -> Callable[[Values], Any]:
        """Each-getter: the elements selected by an index expression that uses ``[*]``."""
        get = self.base(node.base)
        keys = tuple(i.encode() if isinstance(i, str) else i for i in node.indexes)
        if keys == (MAP_EACH,):
            # The common `field[*]`: iterate the array (or the map's values) directly.
            def direct(v: Values) -> Any:
                x = get(v)
                if x is None:
                    return ()
                return x.values() if isinstance(x, dict) else x

            return direct

        def expand(v: Values) -> list[Any]:
            first = get(v)
            current = [] if first is None else [first]
            for key in keys:
                nxt: list[Any] = []
                for x in current:
                    if key is MAP_EACH:
                        nxt.extend(x.values() if isinstance(x, dict) else x)
                    elif isinstance(key, bytes):
                        found = x.get(key)
                        if found is not None:
                            nxt.append(found)
                    elif key < len(x):
                        nxt.append(x[key])
                current = nxt
            return current

        return expand

    def argument(self, arg: Argument) -> Getter:
        if isinstance(arg, BytesLit | IntLit | IpLit):
            constant = arg.value
            return lambda v: constant
        if isinstance(arg, IndexExpr):
            if arg.map_each_count:
                return self.each(arg)
            return self.value(arg)
        return self.logical(arg)

    def call(self, call: FunctionCall) -> Getter:
        args = [self.argument(a) for a in call.args]
        if call.name in ("any", "all"):
            inner = args[0]
            if call.name == "any":
                return lambda v: any(inner(v) or ())
            return lambda v: (lambda xs: xs is not None and all(xs))(inner(v))
        impl = IMPLEMENTATIONS[call.name]
        if call.maps_each:
            first, rest = args[0], args[1:]

            def mapped(v: Values) -> tuple[Any, ...]:
                others = [a(v) for a in rest]
                results = (impl(x, *others) for x in first(v))
                return tuple(r for r in results if r is not None)

            return mapped
        if len(args) == 1:
            only = args[0]
            return lambda v: impl(only(v))
        return lambda v: impl(*[a(v) for a in args])


def _combine(op: LogicalOp, parts: list[Predicate]) -> Predicate:
    if op is LogicalOp.XOR:

        def xor(v: Values) -> bool:
            acc = False
            for p in parts:
                acc ^= p(v)
            return acc

        return xor
    if len(parts) == 2:
        a, b = parts
        if op is LogicalOp.AND:
            return lambda v: a(v) and b(v)
        return lambda v: a(v) or b(v)
    if op is LogicalOp.AND:
        return lambda v: all(p(v) for p in parts)
    return lambda v: any(p(v) for p in parts)


def _vector_combine(op: LogicalOp, parts: list[Vector]) -> Vector:
    def combine(v: Values) -> list[bool]:
        out = parts[0](v)
        for part in parts[1:]:
            other = part(v)
            if op is LogicalOp.AND:
                out = [x and y for x, y in zip(out, other, strict=False)]
            elif op is LogicalOp.OR:
                out = [x or y for x, y in zip(out, other, strict=False)]
            else:
                out = [x != y for x, y in zip(out, other, strict=False)]
        return out

    return combine


def compile_expression(node: LogicalExpr, *, lists: Lists | None = None, nil_not_equal: bool = False) -> Predicate:
    """Compile a parsed filter into a predicate over ``FieldValues`` (generated code, see ``codegen.py``).

    Args:
        node: the AST from ``parse`` (type Bool).
        lists: named lists for ``in $name``; IP lists hold addresses or CIDRs as strings.
        nil_not_equal: wirefilter's behaviour, where ``missing ne x`` is true.

    Raises:
        CompileError: an unknown list.
    """
    emitter = Emitter(_Compiler(lists or {}, nil_not_equal))
    return build(emitter, [emitter.emit_rule(node)], "predicate", scan=False)


def compile_scan(
    nodes: Iterable[LogicalExpr], *, lists: Lists | None = None, prefilter: bool = True, native: bool = COMPILED
) -> Scan:
    """Compile the expressions of a ruleset's rules into one function returning the first match.

    ``prefilter``: rules that one test can skip together are nested under it (``prefilter.py``; False: each
    rule tested on its own, the differential tests' reference). ``native``: the compiled evaluator's objects
    (``scan_plan.py``; the default when ``evaluator.py`` is compiled), else generated code (``codegen.py``).

    Raises:
        CompileError: an unknown list.
    """
    nodes = list(nodes)
    groups = group_rules(nodes) if prefilter else []
    if native:
        return build_scan(nodes, groups, _Compiler(lists or {}, False), lambda n: compile_expression(n, lists=lists))
    emitter = Emitter(_Compiler(lists or {}, False))
    bodies = [emitter.emit_rule(node) for node in nodes]
    return build(emitter, bodies, "scan", scan=True, groups=[(g.members, emitter.group_test(g)) for g in groups])


def compile_reference(node: LogicalExpr, *, lists: Lists | None = None, nil_not_equal: bool = False) -> Predicate:
    """The closure-tree compilation: the reference semantics that generated code must agree with."""
    return _Compiler(lists or {}, nil_not_equal).logical(node)  # type: ignore[return-value]


def compile_value(node: IndexExpr, *, lists: Lists | None = None) -> Getter:
    """Compile a value expression (e.g. a rate-limit characteristic) into a getter."""
    return _Compiler(lists or {}, False).value(node)
