"""Typed, frozen AST of a Rules-language expression.

The shape follows wirefilter's: a *logical* tree (``Combining``, ``Not``, ``Parenthesized``,
``Comparison``) whose leaves compare an ``IndexExpr`` (a field or a function call, then ``[...]``
indexes) with a right-hand side. Parentheses are kept as nodes so that printing an AST gives back
the user's grouping, which the print→reparse property test relies on.

Every node records its ``span`` (start, end offsets in the source) for error messages and for
``rules test`` output; spans do not take part in equality, so a reparsed printout compares equal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, is_dataclass

from .types import BOOL, Type, array_of

__all__ = [
    "MAP_EACH",
    "Argument",
    "BytesLit",
    "CmpOp",
    "Combining",
    "Comparison",
    "FieldRef",
    "FunctionCall",
    "Index",
    "IndexExpr",
    "IntLit",
    "IntRange",
    "IpCidr",
    "IpLit",
    "IpRange",
    "ListRef",
    "Literal",
    "LogicalExpr",
    "LogicalOp",
    "Not",
    "Parenthesized",
    "RegexLit",
    "Rhs",
    "SetLit",
    "WildcardLit",
    "field_names",
]

Span = tuple[int, int]
_NO_SPAN: Span = (0, 0)


class LogicalOp(enum.Enum):
    """Binary logical operators; ``precedence`` grows with binding strength (spec §1.3)."""

    OR = "or"
    XOR = "xor"
    AND = "and"

    @property
    def precedence(self) -> int:
        return _PRECEDENCE[self]


_PRECEDENCE = {LogicalOp.OR: 1, LogicalOp.XOR: 2, LogicalOp.AND: 3}


class CmpOp(enum.Enum):
    """Comparison operators, named by their English spelling (used when printing)."""

    IS_TRUE = ""
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    CONTAINS = "contains"
    MATCHES = "matches"
    WILDCARD = "wildcard"
    STRICT_WILDCARD = "strict wildcard"
    IN = "in"
    BITWISE_AND = "bitwise_and"


class _MapEach(enum.Enum):
    MAP_EACH = "*"


MAP_EACH = _MapEach.MAP_EACH
Index = int | str | _MapEach
"""An index: array position, map key, or ``[*]`` (map-each)."""


# --- literals (right-hand sides and function arguments) ------------------------------------


@dataclass(frozen=True, slots=True)
class BytesLit:
    value: bytes
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class IntLit:
    value: int
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class IpLit:
    value: tuple[int, int]
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class IntRange:
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class IpRange:
    """An explicit ``a..b`` range (inclusive) of one family."""

    low: tuple[int, int]
    high: tuple[int, int]


@dataclass(frozen=True, slots=True)
class IpCidr:
    """A network ``addr/len``; host bits are zero (the lexer refuses anything else)."""

    network: tuple[int, int]
    prefix: int

    @property
    def low(self) -> tuple[int, int]:
        return self.network

    @property
    def high(self) -> tuple[int, int]:
        family, value = self.network
        bits = 32 if family == 4 else 128
        return (family, value | ((1 << (bits - self.prefix)) - 1))


SetItem = BytesLit | IntLit | IpLit | IntRange | IpRange | IpCidr


@dataclass(frozen=True, slots=True)
class SetLit:
    """``{ item item ... }``; items all have the left-hand side's type."""

    items: tuple[SetItem, ...]
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class ListRef:
    """``$name``: a named list resolved at compile time."""

    name: str
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class RegexLit:
    """The pattern text after literal unescaping (what the regex engine sees)."""

    pattern: str
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class WildcardLit:
    pattern: bytes
    span: Span = field(default=_NO_SPAN, compare=False)


Literal = BytesLit | IntLit | IpLit
Rhs = Literal | SetLit | ListRef | RegexLit | WildcardLit


# --- value expressions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str
    type: Type
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class FunctionCall:
    name: str
    args: tuple[Argument, ...]
    return_type: Type
    span: Span = field(default=_NO_SPAN, compare=False)

    @property
    def maps_each(self) -> bool:
        """True when the first argument carries ``[*]``: the call runs once per element."""
        first = self.args[0] if self.args else None
        return isinstance(first, IndexExpr) and first.map_each_count > 0

    @property
    def type(self) -> Type:
        return array_of(self.return_type) if self.maps_each else self.return_type


@dataclass(frozen=True, slots=True)
class IndexExpr:
    """A field or function call followed by zero or more ``[...]`` indexes."""

    base: FieldRef | FunctionCall
    indexes: tuple[Index, ...] = ()
    type: Type = BOOL
    span: Span = field(default=_NO_SPAN, compare=False)

    @property
    def map_each_count(self) -> int:
        return sum(1 for index in self.indexes if index is MAP_EACH)


# --- logical expressions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    lhs: IndexExpr
    op: CmpOp
    rhs: Rhs | None = None
    span: Span = field(default=_NO_SPAN, compare=False)

    @property
    def type(self) -> Type:
        if self.lhs.map_each_count > 0:
            return array_of(BOOL)
        if self.op is CmpOp.IS_TRUE:
            return self.lhs.type
        return BOOL


@dataclass(frozen=True, slots=True)
class Not:
    arg: LogicalExpr
    span: Span = field(default=_NO_SPAN, compare=False)

    @property
    def type(self) -> Type:
        return self.arg.type


@dataclass(frozen=True, slots=True)
class Parenthesized:
    expr: LogicalExpr
    span: Span = field(default=_NO_SPAN, compare=False)

    @property
    def type(self) -> Type:
        return self.expr.type


@dataclass(frozen=True, slots=True)
class Combining:
    """A run of one logical operator, flattened: ``a and b and c`` is one node of three items."""

    op: LogicalOp
    items: tuple[LogicalExpr, ...]
    span: Span = field(default=_NO_SPAN, compare=False)

    @property
    def type(self) -> Type:
        return self.items[0].type


LogicalExpr = Comparison | Not | Parenthesized | Combining
Argument = IndexExpr | Literal | LogicalExpr


def field_names(node: object) -> frozenset[str]:
    """Every field ``node`` reads, at any depth (function arguments included).

    Functions are pure functions of their arguments and lists are resolved when the expression is compiled,
    so an expression's value depends on these fields alone: what lets the edge remember the outcome of rules
    that read only ``http.host`` (pipeline/builtin/origin_rules_memo.py)."""
    if isinstance(node, FieldRef):
        return frozenset((node.name,))
    if isinstance(node, tuple):
        return frozenset().union(*(field_names(item) for item in node))
    if is_dataclass(node) and not isinstance(node, type):
        return frozenset().union(*(field_names(getattr(node, f.name)) for f in fields(node)))
    return frozenset()
