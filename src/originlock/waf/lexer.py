"""Token scanners for the Rules language: whitespace, operators, identifiers.

The language cannot be tokenised ahead of parsing: what ``41:42`` or ``1.2.3.4`` means depends on
the type of the left-hand side, keyword operators match *by prefix* with no word boundary
(``http.host eq "a"and ssl`` is valid), and regex literals have their own escape rules (spec §1.1,
§5). So, like wirefilter, every scanner here is a function ``(src, pos) -> (value, new_pos)`` that
the parser calls when it knows what it expects. Scanners raise ``LexError`` with the span of the
offending input; the parser turns it into a ``ParseError`` carrying the whole expression.
"""

from __future__ import annotations

from typing import Final

from .ast import CmpOp, LogicalOp

__all__ = [
    "RUST_WHITESPACE",
    "LexError",
    "expect",
    "lex_comparison_op",
    "lex_identifier",
    "lex_logical_op",
    "lex_not",
    "skip_space",
]

SPACE: Final = " \r\n"
"""Whitespace between tokens. Tab is deliberately absent: wirefilter rejects it (spec §1.1)."""

RUST_WHITESPACE: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Unicode White_Space, what Rust's ``str::trim`` removes from both ends of the whole input.
Python's ``str.strip()`` would also remove ``\\x1c``-``\\x1f``, which Rust keeps."""

_IDENT_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

# Order matters: the first spelling that is a prefix of the input wins, as in wirefilter's
# lex_enum (``in`` first, ``>=`` before ``>``, ``&`` before the bytes operators).
_COMPARISON_OPS: Final = (
    ("in", CmpOp.IN),
    ("eq", CmpOp.EQ),
    ("==", CmpOp.EQ),
    ("ne", CmpOp.NE),
    ("!=", CmpOp.NE),
    ("ge", CmpOp.GE),
    (">=", CmpOp.GE),
    ("le", CmpOp.LE),
    ("<=", CmpOp.LE),
    ("gt", CmpOp.GT),
    (">", CmpOp.GT),
    ("lt", CmpOp.LT),
    ("<", CmpOp.LT),
    ("&", CmpOp.BITWISE_AND),
    ("bitwise_and", CmpOp.BITWISE_AND),
    ("contains", CmpOp.CONTAINS),
    ("~", CmpOp.MATCHES),
    ("matches", CmpOp.MATCHES),
    ("wildcard", CmpOp.WILDCARD),
    ("strict wildcard", CmpOp.STRICT_WILDCARD),
)

_LOGICAL_OPS: Final = (
    ("or", LogicalOp.OR),
    ("||", LogicalOp.OR),
    ("xor", LogicalOp.XOR),
    ("^^", LogicalOp.XOR),
    ("and", LogicalOp.AND),
    ("&&", LogicalOp.AND),
)


class LexError(Exception):
    """A scanner failure: ``message`` about ``src[start:end]``."""

    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end


def skip_space(src: str, pos: int) -> int:
    while pos < len(src) and src[pos] in SPACE:
        pos += 1
    return pos


def expect(src: str, pos: int, literal: str) -> int:
    """Position after ``literal``, or a wirefilter-style ``expected literal`` error."""
    if src.startswith(literal, pos):
        return pos + len(literal)
    raise LexError(f'expected literal "{literal}"', pos, len(src))


def lex_logical_op(src: str, pos: int) -> tuple[LogicalOp, int] | None:
    for spelling, op in _LOGICAL_OPS:
        if src.startswith(spelling, pos):
            return op, pos + len(spelling)
    return None


def lex_not(src: str, pos: int) -> int | None:
    """Position after a ``not`` / ``!`` prefix, or None. Prefix match: ``notssl`` is ``not ssl``."""
    if src.startswith("not", pos):
        return pos + 3
    if src.startswith("!", pos):
        return pos + 1
    return None


def lex_comparison_op(src: str, pos: int) -> tuple[CmpOp, int] | None:
    for spelling, op in _COMPARISON_OPS:
        if src.startswith(spelling, pos):
            return op, pos + len(spelling)
    return None


def lex_identifier(src: str, pos: int) -> tuple[str, int]:
    """A dotted name: ``[A-Za-z0-9_]+`` segments joined by single dots.

    Raises:
        LexError: ``expected identifier character`` where a segment is empty.
    """
    start = pos
    while True:
        seg = pos
        while pos < len(src) and src[pos] in _IDENT_CHARS:
            pos += 1
        if pos == seg:
            raise LexError("expected identifier character", pos, pos + 1)
        if pos < len(src) and src[pos] == ".":
            pos += 1
            continue
        return src[start:pos], pos
