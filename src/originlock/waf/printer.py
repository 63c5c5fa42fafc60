"""AST -> canonical expression text; ``parse(to_source(ast)) == ast`` for every parsed AST.

Canonical choices: English operator names, one space around operators, Bytes literals as quoted
strings (``\\"``, ``\\\\`` and non-printable bytes as ``\\xHH``), regexes and wildcards as raw strings
with just enough ``#`` to be unambiguous, IPs in their compressed form. Parentheses are printed
only where the AST has a ``Parenthesized`` node, so grouping survives the round trip.
"""

from __future__ import annotations

import ipaddress

from .ast import (
    MAP_EACH,
    Argument,
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
    Not,
    Parenthesized,
    RegexLit,
    Rhs,
    SetLit,
    WildcardLit,
)

__all__ = ["quote_bytes", "to_source"]


def quote_bytes(value: bytes) -> str:
    out = ['"']
    for b in value:
        if b == 0x22:
            out.append('\\"')
        elif b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    out.append('"')
    return "".join(out)


def _raw(text: str) -> str:
    hashes = 0
    while '"' + "#" * hashes in text:
        hashes += 1
    return f'r{"#" * hashes}"{text}"{"#" * hashes}'


def _ip(value: tuple[int, int]) -> str:
    family, number = value
    return str(ipaddress.IPv4Address(number) if family == 4 else ipaddress.IPv6Address(number))


def _set_item(item: BytesLit | IntLit | IpLit | IntRange | IpRange | IpCidr) -> str:
    if isinstance(item, IntRange):
        return f"{item.low}..{item.high}"
    if isinstance(item, IpRange):
        return f"{_ip(item.low)}..{_ip(item.high)}"
    if isinstance(item, IpCidr):
        return f"{_ip(item.network)}/{item.prefix}"
    return _rhs(item)


def _rhs(rhs: Rhs) -> str:
    if isinstance(rhs, BytesLit):
        return quote_bytes(rhs.value)
    if isinstance(rhs, IntLit):
        return str(rhs.value)
    if isinstance(rhs, IpLit):
        return _ip(rhs.value)
    if isinstance(rhs, SetLit):
        return "{" + " ".join(_set_item(i) for i in rhs.items) + "}"
    if isinstance(rhs, ListRef):
        return f"${rhs.name}"
    if isinstance(rhs, RegexLit):
        return _raw(rhs.pattern)
    assert isinstance(rhs, WildcardLit)
    return _raw(rhs.pattern.decode("utf-8", "surrogatepass")) if _raw_safe(rhs.pattern) else quote_bytes(rhs.pattern)


def _raw_safe(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _index_expr(node: IndexExpr) -> str:
    base = node.base
    text = base.name
    if not isinstance(base, FieldRef):
        text += "(" + ", ".join(_argument(a) for a in base.args) + ")"
    for index in node.indexes:
        if index is MAP_EACH:
            text += "[*]"
        elif isinstance(index, int):
            text += f"[{index}]"
        else:
            text += "[" + quote_bytes(index.encode("utf-8", "surrogatepass")) + "]"
    return text


def _argument(arg: Argument) -> str:
    if isinstance(arg, IndexExpr):
        return _index_expr(arg)
    if isinstance(arg, BytesLit | IntLit | IpLit):
        return _rhs(arg)
    return to_source(arg)


def to_source(node: LogicalExpr) -> str:
    """Canonical text of a logical expression."""
    if isinstance(node, Comparison):
        lhs = _index_expr(node.lhs)
        if node.op is CmpOp.IS_TRUE or node.rhs is None:
            return lhs
        return f"{lhs} {node.op.value} {_rhs(node.rhs)}"
    if isinstance(node, Not):
        return f"not {to_source(node.arg)}"
    if isinstance(node, Parenthesized):
        return f"({to_source(node.expr)})"
    assert isinstance(node, Combining)
    return f" {node.op.value} ".join(to_source(item) for item in node.items)
