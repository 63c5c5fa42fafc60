"""Scanners for literal values: strings, raw strings, hex bytes, integers, IPs, list names.

Each follows the exact rule of spec §1.1 (checked against the wirefilter oracle, see
``tests/waf/test_conformance.py``):

- quoted strings allow only ``\\"``, ``\\\\``, ``\\xHH`` and ``\\OOO`` escapes, and give bytes;
- raw strings ``r#"…"#`` close at the first ``"`` followed by as many ``#`` as opened them;
- hex bytes are ``HH:HH[:HH…]`` (at least two bytes; the oracle accepts only ``:``);
- integers are i64: ``0x…`` hex, a leading ``0`` means octal, ``-`` only before decimal;
- IP literals are scanned as a run of ``[0-9a-fA-F:./]`` and then parsed.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from .lexer import LexError

__all__ = [
    "lex_bytes",
    "lex_int",
    "lex_ip_run",
    "lex_list_name",
    "lex_quoted",
    "lex_raw",
    "lex_regex",
    "parse_ip",
]

I64_MIN: Final = -(1 << 63)
I64_MAX: Final = (1 << 63) - 1
MAX_RAW_HASHES: Final = 255
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_OCT: Final = frozenset("01234567")
_DEC: Final = frozenset("0123456789")
_IP_CHARS: Final = frozenset("0123456789abcdefABCDEF:./")
_LIST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.")


def lex_quoted(src: str, pos: int) -> tuple[bytes, int]:
    """A ``"…"`` string starting at ``src[pos] == '"'``; returns its bytes."""
    start = pos
    pos += 1
    out = bytearray()
    while pos < len(src):
        c = src[pos]
        if c == '"':
            return bytes(out), pos + 1
        if c != "\\":
            out += c.encode("utf-8", "surrogatepass")
            pos += 1
            continue
        pos += 1
        e = src[pos] if pos < len(src) else ""
        if e in ('"', "\\") and e:
            out.append(ord(e))
            pos += 1
        elif e == "x":
            out.append(_take_radix(src, pos + 1, 2, 16))
            pos += 3
        elif e and e in _OCT:
            out.append(_take_radix(src, pos, 3, 8))
            pos += 3
        elif not e:
            break
        else:
            raise LexError('expected ", xHH or OOO after \\', pos, pos + 1)
    raise LexError("could not find an ending quote", start, len(src))


def _take_radix(src: str, pos: int, count: int, radix: int) -> int:
    chunk = src[pos : pos + count]
    if len(chunk) < count:
        raise LexError(f"expected {count} characters, but found {len(chunk)}", pos, len(src))
    digits = _HEX if radix == 16 else _OCT
    if not all(ch in digits for ch in chunk):
        raise LexError(f"invalid digit found in string while parsing with radix {radix}", pos, pos + count)
    value = int(chunk, radix)
    if value > 255:
        raise LexError(f"number too large to fit in target type while parsing with radix {radix}", pos, pos + count)
    return value


def lex_raw(src: str, pos: int) -> tuple[str, int]:
    """A raw string ``r#…#"…"#…#`` starting at ``src[pos] == 'r'``; no escapes at all."""
    start = pos
    pos += 1
    hashes = 0
    while pos < len(src) and src[pos] == "#":
        hashes += 1
        pos += 1
    if hashes > MAX_RAW_HASHES:
        raise LexError(f"raw string may use at most {MAX_RAW_HASHES} '#'", start, pos)
    if pos >= len(src) or src[pos] != '"':
        raise LexError('expected " or r', start, pos + 1)
    closing = '"' + "#" * hashes
    end = src.find(closing, pos + 1)
    if end == -1:
        raise LexError("could not find an ending quote", start, len(src))
    return src[pos + 1 : end], end + len(closing)


def lex_bytes(src: str, pos: int) -> tuple[bytes, int]:
    """A Bytes literal: quoted string, raw string, or hex bytes ``61:62``."""
    c = src[pos] if pos < len(src) else ""
    if c == '"':
        return lex_quoted(src, pos)
    if c == "r" and src[pos + 1 : pos + 2] in ('"', "#"):
        text, pos = lex_raw(src, pos)
        return text.encode("utf-8", "surrogatepass"), pos
    out = bytearray([_take_radix(src, pos, 2, 16)])
    pos += 2
    if not src.startswith(":", pos):
        raise LexError("expected byte separator", pos, pos + 1)
    while src.startswith(":", pos):
        out.append(_take_radix(src, pos + 1, 2, 16))
        pos += 3
    return bytes(out), pos


def lex_regex(src: str, pos: int) -> tuple[str, int]:
    """A regex literal: ``r#"…"#`` verbatim, or ``"…"`` with regex escaping.

    In the quoted form backslash sequences pass through unchanged, ``\\"`` outside a character
    class becomes ``"``, and inside ``[...]`` a bare ``"`` does not end the literal (spec §1.1).
    """
    c = src[pos] if pos < len(src) else ""
    if c == "r" and src[pos + 1 : pos + 2] in ('"', "#"):
        return lex_raw(src, pos)
    if c != '"':
        raise LexError('expected " or r', pos, pos + 1)
    start = pos
    pos += 1
    out: list[str] = []
    in_class = False
    while pos < len(src):
        ch = src[pos]
        if ch == "\\":
            nxt = src[pos + 1 : pos + 2]
            if not nxt:
                break
            out.append('"' if nxt == '"' and not in_class else "\\" + nxt)
            pos += 2
            continue
        if ch == '"' and not in_class:
            return "".join(out), pos + 1
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        out.append(ch)
        pos += 1
    raise LexError("could not find an ending quote", start, len(src))


def lex_int(src: str, pos: int) -> tuple[int, int]:
    """An i64 literal: ``0x1F`` hex, ``0123`` octal (= 83), ``-12`` / ``12`` decimal."""
    start = pos
    if src.startswith("0x", pos):
        return _int_digits(src, start, pos + 2, 16)
    if src.startswith("-", pos):
        return _int_digits(src, start, pos + 1, 10)
    if src.startswith("0", pos) and src[pos + 1 : pos + 2] in _DEC and src[pos + 1 : pos + 2]:
        return _int_digits(src, start, pos + 1, 8)
    return _int_digits(src, start, pos, 10)


def _int_digits(src: str, start: int, pos: int, radix: int) -> tuple[int, int]:
    # wirefilter takes every hex digit before choosing the radix, so `5a` is one bad decimal
    # token (and `5and ssl` is an error) rather than `5` followed by `and`.
    end = pos
    while end < len(src) and src[end] in _HEX:
        end += 1
    if end == pos:
        raise LexError("expected digit", pos, max(pos + 1, len(src)))
    try:
        value = int(src[pos:end], radix)
    except ValueError:
        raise LexError(f"invalid digit found in string while parsing with radix {radix}", start, end) from None
    if src[start] == "-":
        value = -value
    if not I64_MIN <= value <= I64_MAX:
        raise LexError(f"number too large to fit in target type while parsing with radix {radix}", start, end)
    return value, end


def lex_ip_run(src: str, pos: int) -> tuple[str, int]:
    """The maximal run of IP-literal characters at ``pos`` (parsed by the caller)."""
    end = pos
    while end < len(src) and src[end] in _IP_CHARS:
        end += 1
    if end == pos:
        raise LexError("expected IP address character", pos, max(pos + 1, len(src)))
    return src[pos:end], end


def parse_ip(text: str, start: int) -> tuple[int, int]:
    """``(family, int)`` for one address. Leading zeros in IPv4 are refused, as Rust does."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise LexError(
            "couldn't parse address in network: invalid IP address syntax", start, start + len(text)
        ) from None
    return (addr.version, int(addr))


def lex_list_name(src: str, pos: int) -> tuple[str, int]:
    """``$name`` at ``pos``: ``[a-z0-9_.]+``, not starting or ending with ``.``."""
    start = pos
    pos += 1
    end = pos
    while end < len(src) and src[end] in _LIST_CHARS:
        end += 1
    name = src[pos:end]
    if not name or name.startswith(".") or name.endswith("."):
        bad = name or src[pos : pos + 1]
        raise LexError(f'invalid list name "{bad}"', start, max(end, pos + 1))
    return name, end
