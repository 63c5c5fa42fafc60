"""Recursive-descent, precedence-climbing parser: expression text -> typed AST.

Theory of operation. The grammar is spec §1.2, restated from wirefilter. Three things make it
unusual, and each has a counterpart here:

1. *The lexer is driven by the parser* (``lexer.py``): what a right-hand side means depends on the
   left-hand side's type, so ``comparison_rest`` picks the literal scanner after the operator.
2. *Types are checked while parsing*, as wirefilter does: an operator the left-hand type does not
   support, a function argument of the wrong kind or type, ``[*]`` outside ``any()``/``all()`` or a
   function's first argument, all fail here with a position, never at evaluation.
3. *Function arguments are ambiguous* (a field, a literal, or a comparison), so ``function_arg``
   follows wirefilter's look-ahead: quotes mean a Bytes literal, ``(`` or ``not`` a logical
   expression, a name a field or call (then a comparison if an operator follows), otherwise an
   IP, an Int, then a Bytes literal.

Logical operators use precedence climbing (``and`` > ``xor`` > ``or``, all left-associative) and
runs of one operator are flattened into one ``Combining`` node. Nesting (parentheses, ``not``,
calls) is limited to 128 levels and the expression to 4096 characters (spec §1.7).
"""

from __future__ import annotations

import ipaddress
from typing import Final, NoReturn

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
    Index,
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
    Rhs,
    SetLit,
    WildcardLit,
)
from .errors import ParseError
from .fields import FIELD_TYPES
from .functions import FUNCTIONS, TRANSFORM_ONLY, ArgInfo, ArgKind, FunctionError
from .lexer import (
    RUST_WHITESPACE,
    LexError,
    expect,
    lex_comparison_op,
    lex_identifier,
    lex_logical_op,
    lex_not,
    skip_space,
)
from .literals import lex_bytes, lex_int, lex_ip_run, lex_list_name, lex_quoted, lex_raw, lex_regex, parse_ip
from .types import BOOL, BYTES, INT, IP, Kind, Type, array_of
from .wildcard import split_wildcard

__all__ = ["MAX_EXPRESSION_LENGTH", "MAX_NESTING_DEPTH", "parse", "parse_value"]

MAX_EXPRESSION_LENGTH: Final = 4096
"""Cloudflare's API limit (the dashboard stops at 4000; sefinek/Cloudflare-WAF-Expressions#11)."""

MAX_NESTING_DEPTH: Final = 128
"""wirefilter's default ``max_nesting_depth``; parentheses, ``not`` and calls count one each."""

_ORDERING: Final = frozenset({CmpOp.EQ, CmpOp.NE, CmpOp.LT, CmpOp.LE, CmpOp.GT, CmpOp.GE})
_DIGITS: Final = frozenset("0123456789")
_HEXDIGITS: Final = frozenset("0123456789abcdefABCDEF")
_U32_MAX: Final = (1 << 32) - 1


def _is_field_char(c: str) -> bool:
    # A name character that cannot start a decimal or hex number (wirefilter's c_is_field).
    return (c.isascii() and c.isalnum() and c not in _HEXDIGITS) or c == "_"


def _is_field_or_int_char(c: str) -> bool:
    return (c.isascii() and c.isalnum()) or c == "_"


class _Parser:
    def __init__(self, src: str, max_depth: int) -> None:
        self.src = src
        self.max_depth = max_depth

    def fail(self, message: str, start: int, end: int | None = None) -> NoReturn:
        raise LexError(message, start, len(self.src) if end is None else end)

    def nest(self, depth: int, pos: int) -> None:
        if depth >= self.max_depth:
            self.fail(f"nesting limit exceeded (maximum {self.max_depth})", pos)

    # --- logical layer -------------------------------------------------------------------

    def logical(self, pos: int, depth: int) -> tuple[LogicalExpr, int]:
        lhs, pos = self.simple(pos, depth)
        return self.climb(lhs, pos, depth, 0)

    def peek_op(self, pos: int) -> tuple[LogicalOp | None, int]:
        found = lex_logical_op(self.src, skip_space(self.src, pos))
        if found is None:
            return None, pos
        op, after = found
        return op, skip_space(self.src, after)

    def climb(self, lhs: LogicalExpr, pos: int, depth: int, min_prec: int) -> tuple[LogicalExpr, int]:
        op, after = self.peek_op(pos)
        while op is not None and op.precedence >= min_prec:
            rhs, rpos = self.simple(after, depth)
            next_op, next_after = self.peek_op(rpos)
            while next_op is not None and next_op.precedence > op.precedence:
                rhs, rpos = self.climb(rhs, rpos, depth, op.precedence + 1)
                next_op, next_after = self.peek_op(rpos)
            left_type, right_type = lhs.type, rhs.type
            both_bool = left_type == BOOL and right_type == BOOL
            both_arrays = left_type.kind is Kind.ARRAY and right_type.kind is Kind.ARRAY
            if not (both_bool or both_arrays):
                self.fail(f"expected value of type {left_type}, but got {right_type}", rpos)
            span = (lhs.span[0], rpos)
            if isinstance(lhs, Combining) and lhs.op is op:
                lhs = Combining(op, (*lhs.items, rhs), span)
            else:
                lhs = Combining(op, (lhs, rhs), span)
            pos, op, after = rpos, next_op, next_after
        return lhs, pos

    def simple(self, pos: int, depth: int) -> tuple[LogicalExpr, int]:
        src = self.src
        if src.startswith("(", pos):
            self.nest(depth, pos)
            inner, end = self.logical(skip_space(src, pos + 1), depth + 1)
            end = expect(src, skip_space(src, end), ")")
            return Parenthesized(inner, (pos, end)), end
        after_not = lex_not(src, pos)
        if after_not is not None:
            self.nest(depth, pos)
            arg, end = self.simple(skip_space(src, after_not), depth + 1)
            return Not(arg, (pos, end)), end
        lhs, end = self.index_expr(pos, depth)
        return self.comparison_rest(lhs, end)

    # --- comparisons ---------------------------------------------------------------------

    def comparison_rest(self, lhs: IndexExpr, pos: int) -> tuple[Comparison, int]:
        src, lhs_type = self.src, lhs.type
        start = lhs.span[0]
        if lhs_type == BOOL:
            return Comparison(lhs, CmpOp.IS_TRUE, None, (start, pos)), pos
        if lhs_type == array_of(BOOL):
            if lhs.map_each_count > 0:
                self.fail("cannot perform this operation on type Array<Array<Bool>>", pos, pos)
            return Comparison(lhs, CmpOp.IS_TRUE, None, (start, pos)), pos
        op_pos = skip_space(src, pos)
        found = lex_comparison_op(src, op_pos)
        if found is None:
            self.fail("expected ComparisonOp", op_pos)
        op, after_op = found
        at = skip_space(src, after_op)
        rhs, end = self.rhs(lhs_type, op, op_pos, after_op, at)
        return Comparison(lhs, op, rhs, (start, end)), end

    def rhs(self, lhs_type: Type, op: CmpOp, op_pos: int, after_op: int, at: int) -> tuple[Rhs, int]:
        src, kind = self.src, lhs_type.kind
        scalar = kind in (Kind.BYTES, Kind.INT, Kind.IP)
        if op is CmpOp.IN and scalar:
            if src.startswith("$", at):
                name, end = lex_list_name(src, at)
                return ListRef(name, (at, end)), end
            return self.set_literal(kind, at)
        if op in _ORDERING and scalar:
            return self.scalar(kind, at)
        if op is CmpOp.BITWISE_AND and kind is Kind.INT:
            value, end = lex_int(src, at)
            return IntLit(value, (at, end)), end
        if kind is Kind.BYTES and op is CmpOp.CONTAINS:
            data, end = lex_bytes(src, at)
            return BytesLit(data, (at, end)), end
        if kind is Kind.BYTES and op is CmpOp.MATCHES:
            pattern, end = lex_regex(src, at)
            try:
                regex.check_pattern(pattern)
            except regex.RegexError as exc:
                self.fail(str(exc), at, end)
            return RegexLit(pattern, (at, end)), end
        if kind is Kind.BYTES and op in (CmpOp.WILDCARD, CmpOp.STRICT_WILDCARD):
            return self.wildcard(at)
        self.fail(f"cannot perform this operation on type {lhs_type}", op_pos, after_op)

    def wildcard(self, at: int) -> tuple[WildcardLit, int]:
        src = self.src
        if src.startswith('"', at):
            data, end = lex_quoted(src, at)
        elif src.startswith("r", at) and src[at + 1 : at + 2] in ('"', "#"):
            text, end = lex_raw(src, at)
            data = text.encode("utf-8", "surrogatepass")
        else:
            self.fail('expected " or r', at, at + 1)
        try:
            split_wildcard(data)
        except ValueError as exc:
            self.fail(str(exc), at, end)
        return WildcardLit(data, (at, end)), end

    def scalar(self, kind: Kind, at: int) -> tuple[BytesLit | IntLit | IpLit, int]:
        src = self.src
        if kind is Kind.BYTES:
            data, end = lex_bytes(src, at)
            return BytesLit(data, (at, end)), end
        if kind is Kind.INT:
            value, end = lex_int(src, at)
            return IntLit(value, (at, end)), end
        text, end = lex_ip_run(src, at)
        return IpLit(parse_ip(text, at), (at, end)), end

    def set_literal(self, kind: Kind, at: int) -> tuple[SetLit, int]:
        src = self.src
        pos = skip_space(src, expect(src, at, "{"))
        items: list[BytesLit | IntLit | IpLit | IntRange | IpRange | IpCidr] = []
        while not src.startswith("}", pos):
            if kind is Kind.BYTES:
                data, end = lex_bytes(src, pos)
                items.append(BytesLit(data, (pos, end)))
            elif kind is Kind.INT:
                low, end = lex_int(src, pos)
                if src.startswith("..", end):
                    high, end = lex_int(src, end + 2)
                    if high < low:
                        self.fail("incompatible range bounds", pos, end)
                    items.append(IntRange(low, high))
                else:
                    items.append(IntLit(low, (pos, end)))
            else:
                text, end = lex_ip_run(src, pos)
                items.append(self.ip_item(text, pos, end))
            pos = skip_space(src, end)
        return SetLit(tuple(items), (at, pos + 1)), pos + 1

    def ip_item(self, text: str, pos: int, end: int) -> IpLit | IpRange | IpCidr:
        if ".." in text:
            left, right = text.split("..", 1)
            low, high = parse_ip(left, pos), parse_ip(right, pos + len(left) + 2)
            if low[0] != high[0] or high[1] < low[1]:
                self.fail("incompatible range bounds", pos, end)
            return IpRange(low, high)
        if "/" in text:
            address, _, length = text.partition("/")
            network = parse_ip(address, pos)
            bits = 32 if network[0] == 4 else 128
            if not length.isdigit() or int(length) > bits:
                self.fail(f"invalid length for network: {length!r} is not a valid prefix", pos, end)
            try:
                ipaddress.ip_network(f"{address}/{int(length)}", strict=True)
            except ValueError:
                self.fail("host part of address was not zero", pos, end)
            return IpCidr(network, int(length))
        return IpLit(parse_ip(text, pos), (pos, end))

    # --- value expressions ---------------------------------------------------------------

    def index_expr(self, pos: int, depth: int) -> tuple[IndexExpr, int]:
        src = self.src
        name, end = lex_identifier(src, pos)
        base: FieldRef | FunctionCall
        field_type = FIELD_TYPES.get(name)
        if field_type is not None:
            base = FieldRef(name, field_type, (pos, end))
        elif name in FUNCTIONS:
            base, end = self.call(name, pos, end, depth)
        elif name in TRANSFORM_ONLY:
            self.fail(f"function {name}() is not available in WAF custom rules", pos, end)
        else:
            self.fail("unknown identifier", pos, end)
        current = base.type
        indexes: list[Index] = []
        while src.startswith("[", end):
            index, close = self.index(end)
            current = self.index_type(current, index, end, close)
            indexes.append(index)
            end = close
        return IndexExpr(base, tuple(indexes), current, (pos, end)), end

    def index(self, open_pos: int) -> tuple[Index, int]:
        src = self.src
        pos = skip_space(src, open_pos + 1)
        index: Index
        if src.startswith("*", pos):
            index, pos = MAP_EACH, pos + 1
        elif src.startswith('"', pos):
            raw, end = lex_quoted(src, pos)
            try:
                index = raw.decode("utf-8")
            except UnicodeDecodeError:
                self.fail('expected literal "expected utf8 string"', pos, end)
            pos = end
        elif src[pos : pos + 1] in _DIGITS and src[pos : pos + 1]:
            value, end = lex_int(src, pos)
            if not 0 <= value <= _U32_MAX:
                self.fail('expected literal "expected positive integer as index"', pos, end)
            index, pos = value, end
        elif src.startswith("-", pos):
            self.fail('expected literal "expected positive integer as index"', pos)
        else:
            self.fail('expected literal "expected quoted utf8 string or positive integer"', pos)
        return index, expect(src, skip_space(src, pos), "]")

    def index_type(self, current: Type, index: Index, start: int, end: int) -> Type:
        kind = current.kind
        ok = (
            (index is MAP_EACH and kind in (Kind.ARRAY, Kind.MAP))
            or (isinstance(index, int) and kind is Kind.ARRAY)
            or (isinstance(index, str) and kind is Kind.MAP)
        )
        if not ok or current.inner is None:
            label = "[*]" if index is MAP_EACH else f"[{index!r}]"
            self.fail(f"cannot access index {label} for type {current}", start, end)
        return current.inner

    def call(self, name: str, start: int, pos: int, depth: int) -> tuple[FunctionCall, int]:
        src, definition = self.src, FUNCTIONS[name]
        self.nest(depth, pos)
        pos = skip_space(src, expect(src, skip_space(src, pos), "("))
        args: list[Argument] = []
        infos: list[ArgInfo] = []
        while pos < len(src) and src[pos] != ")":
            if args:
                pos = skip_space(src, expect(src, pos, ","))
            index = len(args)
            arg, end = self.function_arg(pos, depth + 1)
            if index > 0 and isinstance(arg, IndexExpr) and arg.map_each_count > 0:
                self.fail("invalid use of map each access: only the first argument may use [*]", pos, end)
            if definition.max_args is not None and index >= definition.max_args:
                self.fail("invalid number of arguments", pos)
            info = _arg_info(arg)
            try:
                definition.check(index, info, infos)
            except FunctionError as exc:
                self.fail(str(exc), pos, end)
            args.append(arg)
            infos.append(info)
            pos = skip_space(src, end)
        if len(args) < definition.min_args:
            self.fail("invalid number of arguments", pos)
        end = expect(src, pos, ")")
        return FunctionCall(name, tuple(args), definition.returns(infos), (start, end)), end

    def function_arg(self, pos: int, depth: int) -> tuple[Argument, int]:
        src = self.src
        c, c2, c3 = src[pos : pos + 1], src[pos + 1 : pos + 2], src[pos + 2 : pos + 3]
        if c == '"' or (c == "r" and c2 in ('"', "#") and c2):
            data, end = lex_bytes(src, pos)
            return BytesLit(data, (pos, end)), end
        if c == "(" or (c and lex_not(src, pos) is not None):
            return self.logical(pos, depth)
        looks_like_name = bool(c) and (
            _is_field_char(c)
            or (_is_field_or_int_char(c) and bool(c2) and _is_field_char(c2))
            or (_is_field_or_int_char(c) and bool(c2) and _is_field_or_int_char(c2) and bool(c3) and _is_field_char(c3))
        )
        if looks_like_name:
            return self.value_or_comparison(pos, depth)
        try:
            return self.value_or_comparison(pos, depth)
        except LexError:
            pass
        return self.literal_arg(pos)

    def value_or_comparison(self, pos: int, depth: int) -> tuple[IndexExpr | Comparison, int]:
        lhs, end = self.index_expr(pos, depth)
        if lex_comparison_op(self.src, skip_space(self.src, end)) is not None:
            return self.comparison_rest(lhs, end)
        return lhs, end

    def literal_arg(self, pos: int) -> tuple[BytesLit | IntLit | IpLit, int]:
        src = self.src
        try:
            text, end = lex_ip_run(src, pos)
            return IpLit(parse_ip(text, pos), (pos, end)), end
        except LexError:
            pass
        try:
            value, end = lex_int(src, pos)
            return IntLit(value, (pos, end)), end
        except LexError:
            pass
        try:
            data, end = lex_bytes(src, pos)
            return BytesLit(data, (pos, end)), end
        except LexError:
            self.fail("unrecognised input", pos)


def _arg_info(arg: Argument) -> ArgInfo:
    if isinstance(arg, BytesLit):
        return ArgInfo(ArgKind.LITERAL, BYTES, arg.value)
    if isinstance(arg, IntLit):
        return ArgInfo(ArgKind.LITERAL, INT, arg.value)
    if isinstance(arg, IpLit):
        return ArgInfo(ArgKind.LITERAL, IP, arg.value)
    return ArgInfo(ArgKind.FIELD, arg.type)


def _trim(expression: str) -> tuple[str, int]:
    stripped = expression.lstrip(RUST_WHITESPACE)
    lead = len(expression) - len(stripped)
    return stripped.rstrip(RUST_WHITESPACE), lead


def _run(expression: str, max_length: int, max_depth: int, value: bool) -> LogicalExpr | IndexExpr:
    if len(expression) > max_length:
        raise ParseError(f"expression is longer than {max_length} characters", expression, max_length, len(expression))
    src, lead = _trim(expression)
    parser = _Parser(src, max_depth)
    try:
        node: LogicalExpr | IndexExpr
        if value:
            node, end = parser.index_expr(0, 0)
        else:
            node, end = parser.logical(0, 0)
        if end != len(src):
            parser.fail("unrecognised input", end)
        if not value and node.type != BOOL:
            parser.fail(f"expected value of type Bool, but got {node.type}", end)
        if value and isinstance(node, IndexExpr) and node.map_each_count > 0:
            parser.fail(f"expected value of type {node.type}, but got Array<{node.type}>", 0)
    except LexError as exc:
        raise ParseError(exc.message, expression, exc.start + lead, exc.end + lead) from None
    except RecursionError:
        # Deep chains of logical operators recurse once per precedence level only, so this
        # is a backstop for inputs that the nesting limit does not already stop.
        raise ParseError("expression is too complex", expression, 0, len(expression)) from None
    return node


def parse(
    expression: str,
    *,
    max_length: int = MAX_EXPRESSION_LENGTH,
    max_depth: int = MAX_NESTING_DEPTH,
) -> LogicalExpr:
    """Parse and type-check a filter expression (its type must be Bool).

    Raises:
        ParseError: with wirefilter's message and the span of the offending input.
    """
    node = _run(expression, max_length, max_depth, value=False)
    assert not isinstance(node, IndexExpr)
    return node


def parse_value(expression: str, *, max_length: int = MAX_EXPRESSION_LENGTH) -> IndexExpr:
    """Parse a value expression such as a rate-limit characteristic (``http.request.headers["x"]``).

    Raises:
        ParseError: as ``parse``.
    """
    node = _run(expression, max_length, MAX_NESTING_DEPTH, value=True)
    assert isinstance(node, IndexExpr)
    return node
