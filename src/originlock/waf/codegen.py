"""Rule expressions -> straight-line Python source, compiled once per rule and once per ruleset.

Why: the closure tree of ``compiler.py`` pays one Python call per AST node; on the 25-rule
benchmark that was ~7 µs of the per-request cost even with every field value cached, plus ~3 µs
of per-rule loop overhead. Generated code evaluates a rule like ``http.user_agent contains "x"``
as ``(f1 is not None and b'x' in f1)``: no calls at all (~40 ns instead of ~280 ns, measured with
``bench/waf_eval.py``'s ruleset).

What is inlined: comparisons of a plain field (or ``lower``/``upper``/``len`` of one, or
``map["key"][n]``) with a literal, a set or a pattern; ``starts_with``/``ends_with`` with a literal;
``any(field[*] op literal)`` over an array field; ``and``/``or``/``xor``/``not``. Every other node
is delegated to the closure the reference compiler builds for it (``compiler._Compiler``), so the
semantics stay those of ``compiler.py`` (a differential test, ``tests/waf/test_codegen.py``, checks
both on every evaluation case).

Safety: nothing user-controlled is spliced into source except ``repr()`` of ``bytes``/``int``
literals and field names from the scheme (checked against ``_FIELD_NAME``); every other constant
(sets, regex matchers, fallback closures) is passed in the namespace of the generated function.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from .ast import (
    MAP_EACH,
    BytesLit,
    CmpOp,
    Combining,
    Comparison,
    FieldRef,
    IndexExpr,
    IntLit,
    IpLit,
    LogicalExpr,
    LogicalOp,
    Not,
    Parenthesized,
    SetLit,
    WildcardLit,
)
from .context import dependencies, extractor
from .fields import CONSTANT_FIELDS
from .prefilter import EQ, PREFIX, Group
from .types import Kind
from .wildcard import split_wildcard

__all__ = ["Emitter", "Reference", "build"]

_FIELD_NAME: Final = re.compile(r"[a-z0-9_.]+")
_OPS: Final = {CmpOp.EQ: "==", CmpOp.NE: "!=", CmpOp.LT: "<", CmpOp.LE: "<=", CmpOp.GT: ">", CmpOp.GE: ">="}
_MAX_INLINE_RANGES: Final = 8
"""Sets with more ranges keep the reference membership test (one call, not a long ``or`` chain)."""


class Reference(Protocol):
    """What the emitter needs of the closure compiler (``compiler._Compiler``)."""

    nil_not_equal: bool

    def logical(self, node: LogicalExpr) -> Callable[[Mapping[str, Any]], Any]: ...

    def test(self, node: Comparison) -> Callable[[Any], bool]: ...


class _Value:
    """A value expression: ``src`` is valid once every guard holds; ``nullable`` if it can be None."""

    __slots__ = ("guards", "nullable", "src")

    def __init__(self, guards: list[str], src: str, nullable: bool) -> None:
        self.guards = guards
        self.src = src
        self.nullable = nullable


class Emitter:
    """Emits the source of Bool expressions that share one namespace of fields and constants.

    ``reference`` (``compiler._Compiler``) builds the closure for any node this emitter does not
    inline, and the test function (regex, wildcard, list membership) of a comparison.
    """

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self.nil_not_equal = reference.nil_not_equal
        self.namespace: dict[str, Any] = {}
        self.fields: dict[str, str] = {}  # field name -> local variable
        self.used: list[str] = []  # fields of the expression being emitted, in first-use order
        self.temps = 0

    # --- names ----------------------------------------------------------------------------

    def const(self, value: Any) -> str:
        if type(value) in (bytes, int) and not isinstance(value, bool):
            return repr(value)
        name = f"k{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def field(self, name: str) -> str:
        local = self.fields.get(name)
        if local is None:
            if not _FIELD_NAME.fullmatch(name):
                raise ValueError(f"unexpected field name {name!r}")
            local = self.fields[name] = f"f{len(self.fields)}"
        if name not in self.used:
            self.used.append(name)
        return local

    def temp(self) -> str:
        self.temps += 1
        return f"t{self.temps}"

    # --- logical --------------------------------------------------------------------------

    def emit_rule(self, node: LogicalExpr) -> tuple[list[str], str]:
        """The fields one top-level expression reads (in first-use order) and its source."""
        self.used = []
        return self.used, self.emit(node)

    def emit(self, node: LogicalExpr) -> str:
        """Python source of a Bool-typed expression (a bool at run time)."""
        if node.type.kind is Kind.ARRAY:
            return self.fallback(node)
        if isinstance(node, Parenthesized):
            return self.emit(node.expr)
        if isinstance(node, Not):
            return f"(not {self.emit(node.arg)})"
        if isinstance(node, Combining):
            joiner = {LogicalOp.AND: " and ", LogicalOp.OR: " or ", LogicalOp.XOR: " ^ "}[node.op]
            return "(" + joiner.join(self.emit(item) for item in node.items) + ")"
        src = self.comparison(node)
        return self.fallback(node) if src is None else src

    def fallback(self, node: LogicalExpr) -> str:
        return f"{self.const(self.reference.logical(node))}(v)"

    def comparison(self, node: Comparison) -> str | None:
        lhs = node.lhs
        if node.op is CmpOp.IS_TRUE:
            return self.is_true(lhs)
        if lhs.map_each_count or (node.op is CmpOp.NE and self.nil_not_equal):
            return None  # vectors, and wirefilter's `missing ne x` option, stay with the reference
        value = self.value(lhs)
        if value is None:
            return None
        test = self.test(node, value)
        if test is None:
            return None
        return _conjunction(value.guards, test)

    def is_true(self, lhs: IndexExpr) -> str | None:
        base = lhs.base
        if lhs.indexes:
            return None
        if isinstance(base, FieldRef):
            if base.name in CONSTANT_FIELDS:
                return repr(CONSTANT_FIELDS[base.name])
            return f"({self.field(base.name)} is True)"
        if base.name in ("starts_with", "ends_with") and not base.maps_each:
            subject, affix = base.args
            value = self.value(subject) if isinstance(subject, IndexExpr) else None
            if value is None or not isinstance(affix, BytesLit):
                return None
            method = "startswith" if base.name == "starts_with" else "endswith"
            return _conjunction(_present(value), f"{value.src}.{method}({self.const(affix.value)})")
        if base.name == "any" and len(base.args) == 1 and isinstance(base.args[0], Comparison):
            return self.any_each(base.args[0])
        return None

    def any_each(self, node: Comparison) -> str | None:
        """``any(array_field[*] op literal)``: ``literal in f`` for ``eq``, a generator otherwise."""
        lhs = node.lhs
        if not (isinstance(lhs.base, FieldRef) and lhs.indexes == (MAP_EACH,)):
            return None
        if lhs.base.type.kind is not Kind.ARRAY or lhs.base.name in CONSTANT_FIELDS:
            return None
        f = self.field(lhs.base.name)
        if node.op is CmpOp.EQ and isinstance(node.rhs, BytesLit | IntLit):
            return f"({f} is not None and {self.const(node.rhs.value)} in {f})"
        element = _Value([], "x", False)
        test = self.test(node, element) if node.op is not CmpOp.IS_TRUE else None
        if test is None:
            return None
        return f"({f} is not None and any({test} for x in {f}))"

    def group_test(self, group: Group) -> tuple[list[str], str]:
        """The field a prefilter group reads and the source of its test (``prefilter.holds``)."""
        self.used = []
        test = group.test
        f = self.field(test.field)
        x = f"{f}.{test.fold}()" if test.fold else f
        if test.kind == EQ:
            members = self.const(frozenset(test.literals))
            return self.used, f"({x} in {members})" if not test.fold else f"({f} is not None and {x} in {members})"
        if test.kind == PREFIX:
            return self.used, f"({f} is not None and {x}.startswith({self.const(test.literals)}))"
        return self.used, f"({f} is not None and {x}.find({self.const(test.literals[0])}) >= 0)"

    # --- values ---------------------------------------------------------------------------

    def value(self, node: IndexExpr) -> _Value | None:
        base = node.base
        if isinstance(base, FieldRef):
            if base.name in CONSTANT_FIELDS:
                return None
            value = _Value([], self.field(base.name), True)
        elif base.name in ("lower", "upper", "len") and len(base.args) == 1 and not base.maps_each:
            arg = base.args[0]
            if not (isinstance(arg, IndexExpr) and isinstance(arg.base, FieldRef) and not arg.indexes):
                return None
            if arg.base.name in CONSTANT_FIELDS:
                return None
            f = self.field(arg.base.name)
            src = f"len({f})" if base.name == "len" else f"{f}.{base.name}()"
            value = _Value([f"{f} is not None"], src, False)
        else:
            return None
        indexed: _Value | None = value
        for key in node.indexes:
            indexed = self.index(value, key)
            if indexed is None:
                return None
            value = indexed
        return value

    def index(self, value: _Value, key: object) -> _Value | None:
        # Mirrors compiler._Compiler.value.walk: a missing container, key or index gives None.
        guards = _present(value)
        if isinstance(key, str):
            t = self.temp()  # walrus-bound so the map lookup runs once
            return _Value([*guards, f"({t} := {value.src}.get({key.encode()!r})) is not None"], t, False)
        if type(key) is int and key >= 0:
            return _Value([*guards, f"len({value.src}) > {key}"], f"{value.src}[{key}]", False)
        return None

    # --- tests ----------------------------------------------------------------------------

    def test(self, node: Comparison, value: _Value) -> str | None:
        """Source of the comparison, valid once the value's guards hold (it may still be None)."""
        op, rhs = node.op, node.rhs
        x = value.src
        present = f"{x} is not None and " if value.nullable else ""
        if op is CmpOp.EQ and isinstance(rhs, BytesLit | IntLit | IpLit):
            return f"({x} == {self.const(rhs.value)})"  # None never equals a literal
        if op in _OPS and isinstance(rhs, BytesLit | IntLit):
            return f"({present}{x} {_OPS[op]} {self.const(rhs.value)})"
        if op in _OPS and isinstance(rhs, IpLit):
            if op is CmpOp.NE:
                return f"({present}{x} != {self.const(rhs.value)})"  # v4 vs v6: only `ne` holds
            family = rhs.value[0]
            return f"({present}{x}[0] == {family} and {x} {_OPS[op]} {self.const(rhs.value)})"
        if op is CmpOp.CONTAINS and isinstance(rhs, BytesLit):
            # `needle in haystack` first tries the needle as an int (a caught TypeError inside
            # CPython): 140 ns against 70 ns for find(); a one-byte needle as an int is 17 ns.
            if len(rhs.value) == 1:
                return f"({present}{rhs.value[0]} in {x})"
            return f"({present}{x}.find({self.const(rhs.value)}) >= 0)"
        if op is CmpOp.BITWISE_AND and isinstance(rhs, IntLit):
            return f"({present}({x} & {rhs.value}) != 0)"
        if op is CmpOp.IN and isinstance(rhs, SetLit):
            return self.membership(rhs, x, present)
        if op in (CmpOp.WILDCARD, CmpOp.STRICT_WILDCARD) and isinstance(rhs, WildcardLit):
            inline = self.wildcard(op, rhs.pattern, x, present)
            if inline is not None:
                return inline
        if op in (CmpOp.MATCHES, CmpOp.WILDCARD, CmpOp.STRICT_WILDCARD, CmpOp.IN):
            # The reference test function (RE2 matcher, wildcard segments, list membership).
            matcher = self.reference.test(node)
            return f"({present}{self.const(matcher)}({x}))"
        return None

    def membership(self, rhs: SetLit, x: str, present: str) -> str | None:
        singles = frozenset(i.value for i in rhs.items if isinstance(i, BytesLit | IntLit | IpLit))
        ranges = [(i.low, i.high) for i in rhs.items if not isinstance(i, BytesLit | IntLit | IpLit)]
        if not ranges:
            return f"({x} in {self.const(singles)})"  # None is in no set
        if len(ranges) > _MAX_INLINE_RANGES:
            return None
        tests = [] if not singles else [f"{x} in {self.const(singles)}"]
        ip_ranges = [(lo, hi) for lo, hi in ranges if isinstance(lo, tuple) and isinstance(hi, tuple)]
        tests += [f"{lo!r} <= {x} <= {hi!r}" for lo, hi in ranges if isinstance(lo, int)]
        for family in (4, 6):
            # IPs are (family, int); a range never spans families. Comparing the ints is ~3x cheaper
            # than comparing the tuples (0.2 µs for the benchmark's three CIDRs).
            within = [f"{lo[1]!r} <= {x}[1] <= {hi[1]!r}" for lo, hi in ip_ranges if lo[0] == family]
            if within:
                tests.append(f"({x}[0] == {family} and ({' or '.join(within)}))")
        return f"({present}({' or '.join(tests)}))"

    def wildcard(self, op: CmpOp, pattern: bytes, x: str, present: str) -> str | None:
        """At most one star: slices and ``lower()`` instead of a call (compile_wildcard's semantics)."""
        segments = split_wildcard(pattern)
        strict = op is CmpOp.STRICT_WILDCARD
        if len(segments) > 2:
            return None
        if not strict:
            segments = tuple(segment.lower() for segment in segments)
        fold = "" if strict else ".lower()"  # ASCII-only, per byte: slicing first is the same
        if len(segments) == 1:
            return f"({present}{x}{fold} == {segments[0]!r})"
        head, tail = segments
        tests = [f"{x}[:{len(head)}]{fold} == {head!r}"] if head else []
        if tail:
            tests.append(f"{x}[-{len(tail)}:]{fold} == {tail!r}")
        if head and tail:
            tests.insert(0, f"len({x}) >= {len(head) + len(tail)}")
        return f"({present}{' and '.join(tests) or 'True'})"


def _present(value: _Value) -> list[str]:
    """Guards under which ``value.src`` is present (not None)."""
    return [*value.guards, f"{value.src} is not None"] if value.nullable else value.guards


def _conjunction(guards: list[str], test: str) -> str:
    return "(" + " and ".join([*guards, test]) + ")" if guards else test


def build(
    emitter: Emitter,
    bodies: list[tuple[list[str], str]],
    name: str,
    *,
    scan: bool,
    groups: list[tuple[tuple[int, ...], tuple[list[str], str]]] = [],  # noqa: B006 (never mutated)
) -> Callable[[Mapping[str, Any]], Any]:
    """Compile generated bodies: a predicate (one body) or a ruleset scan returning the first match.

    Each body is (fields it uses, expression). Fields are loaded right before the first rule that
    needs them, so a field costs nothing until a rule reaches it (evaluation stays lazy). A predicate
    reads ``v[name]`` (any mapping); a scan takes a ``FieldValues`` and calls the field's extractor
    itself when the value is not cached yet, storing it as ``FieldValues.__missing__`` would.

    ``groups`` (scans only): (member indexes, (fields, test)) from ``prefilter.group_rules`` and
    ``Emitter.group_test``. Each run of consecutive members is nested under one ``if`` on the group's test
    (computed once into a local when the group has several runs), so a false test skips them all.
    """
    namespace = dict(emitter.namespace)
    lines = [f"def {name}(v):"]
    loaded: set[str] = set()  # fields held in a local
    helpers = 0

    def load(fields: list[str], indent: str) -> None:
        nonlocal helpers
        for field_name in fields:
            if field_name in loaded:
                continue
            loaded.add(field_name)
            local = emitter.fields[field_name]
            if not scan:
                lines.append(f"{indent}{local} = v[{field_name!r}]")
                continue
            compute = extractor(field_name)
            # `in` then a subscript rather than v.get(name, sentinel): no method call, ~30 ns per field.
            if compute is None:  # only RequestFields.extra can supply it
                lines.append(f"{indent}{local} = v[{field_name!r}] if {field_name!r} in v else None")
                continue
            namespace[f"x{local}"] = compute
            lines.append(f"{indent}if {field_name!r} in v: {local} = v[{field_name!r}]")
            # Dependencies (e.g. the header map before http.user_agent) only when the field itself is not
            # there yet, and the request read only here: the edge fills the fields its rules read.
            lines.append(f"{indent}else:")
            for dep in dependencies(field_name):
                if dep not in loaded:  # (another field's branch may have computed it: hence the test)
                    helpers += 1
                    helper = namespace[f"d{helpers}"] = extractor(dep)
                    assert helper is not None, dep
                    lines.append(f"{indent}    if {dep!r} not in v: v[{dep!r}] = d{helpers}(v.request, v)")
            lines.append(f"{indent}    {local} = v[{field_name!r}] = x{local}(v.request, v)")

    member_of = {index: g for g, (members, _) in enumerate(groups) for index in members}
    tested: set[int] = set()  # groups whose test is held in a local
    index = 0
    while index < len(bodies):
        g = member_of.get(index)
        if g is None or not scan:
            fields, expression = bodies[index]
            load(fields, "    ")
            lines.append(f"    if {expression}: return {index}" if scan else f"    return {expression}")
            index += 1
            continue
        members, (test_fields, test) = groups[g]
        run = [index]
        while member_of.get(run[-1] + 1) == g:
            run.append(run[-1] + 1)
        if g in tested:
            test = f"g{g}"
        else:
            load(test_fields, "    ")
            if members[-1] > run[-1]:  # another run of this group follows: keep the test's outcome
                lines.append(f"    g{g} = {test}")
                test = f"g{g}"
                tested.add(g)
        lines.append(f"    if {test}:")
        # Fields loaded inside the block are not loaded for what follows it (the block may be skipped).
        outer_loaded = set(loaded)
        for member in run:
            fields, expression = bodies[member]
            load(fields, "        ")
            lines.append(f"        if {expression}: return {member}")
        loaded = outer_loaded
        index = run[-1] + 1
    if scan:
        lines.append("    return -1")
    source = "\n".join(lines)
    exec(compile(source, f"<waf {name}>", "exec"), namespace)  # see the module docstring: no user text is spliced in
    function = namespace[name]
    function.source = source  # for debugging and tests: what was generated
    return function  # type: ignore[no-any-return]
