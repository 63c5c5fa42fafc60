"""SecLang operators (``@rx``, ``@pm``, ``@detectSQLi``, …) compiled once into matchers.

Theory of operation. ``compile_operator`` turns an operator and its argument into an
:class:`Operator`: ``match(value, expand)`` says whether the (transformed) value matches and, for
``@rx``, keeps the capture groups for the ``capture`` action. Arguments holding a macro
(``@within %{tx.allowed_methods}``) are expanded per request through ``expand``; every other
argument is compiled here: ``@rx`` on RE2 (Latin-1 mode, so the pattern and the input are octets,
as in ModSecurity's PCRE without UTF), ``@pm``/``@pmFromFile`` on an Aho-Corasick automaton
(pyahocorasick; case-insensitive, as ModSecurity's ``@pm``), ``@detectSQLi``/``@detectXSS`` on
libinjection (the ``libinjection-python`` binding).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from pathlib import Path

import ahocorasick
import libinjection
import re2

from originlock.waf.regex import re2_options

__all__ = ["Expand", "Operator", "OperatorError", "Rx", "compile_operator"]

Expand = Callable[[str], str]
"""Expands ``%{...}`` macros in an operator argument for the current request."""


class OperatorError(ValueError):
    pass


_OPTIONS = re2_options(64 << 20)


class Operator:
    """One compiled operator; ``captures`` holds the last ``@rx`` match's groups (0..9)."""

    __slots__ = ("arg", "dynamic", "name", "negated")

    def __init__(self, name: str, arg: str, negated: bool) -> None:
        self.name = name
        self.arg = arg
        self.negated = negated
        self.dynamic = "%{" in arg

    def test(self, value: bytes, expand: Expand) -> tuple[bytes, ...] | None:
        """The captures (empty unless ``@rx``) when ``value`` matches, else None (negation applied)."""
        result = self._test(value, expand)
        if self.negated:
            return None if result is not None else ()
        return result

    def _test(self, value: bytes, expand: Expand) -> tuple[bytes, ...] | None:
        raise NotImplementedError


class Rx(Operator):
    """``@rx``; ``set_index`` is its place in the engine's RE2 set (-1: searched on its own)."""

    __slots__ = ("regex", "set_index")

    def __init__(self, name: str, arg: str, negated: bool) -> None:
        super().__init__(name, arg, negated)
        self.set_index = -1
        try:
            self.regex = re2.compile(arg.encode("utf-8"), _OPTIONS)
        except re2.error as exc:
            raise OperatorError(f"@rx {arg!r}: {exc}") from None

    def _test(self, value: bytes, expand: Expand) -> tuple[bytes, ...] | None:
        match = self.regex.search(value)
        if match is None:
            return None
        groups = [match.group(0)]
        for group in match.groups()[:9]:
            groups.append(group if group is not None else b"")
        return tuple(groups)


class _Pm(Operator):
    __slots__ = ("automaton",)

    def __init__(self, name: str, arg: str, negated: bool, phrases: list[str]) -> None:
        super().__init__(name, arg, negated)
        self.automaton = ahocorasick.Automaton()
        for phrase in phrases:
            lowered = phrase.lower()
            self.automaton.add_word(lowered, lowered)
        self.automaton.make_automaton()

    def _test(self, value: bytes, expand: Expand) -> tuple[bytes, ...] | None:
        for _end, phrase in self.automaton.iter(value.decode("latin-1").lower()):
            return (phrase.encode("latin-1"),)
        return None


def _atoi(text: bytes | str) -> int:
    """C ``atoi``: optional sign and leading digits, else 0 (how ModSecurity reads numbers)."""
    if text.isdigit():
        return int(text)
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    text = text.strip()
    sign = 1
    if text[:1] in ("-", "+"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = 0
    while digits < len(text) and text[digits].isdigit():
        digits += 1
    return sign * int(text[:digits]) if digits else 0


class _Simple(Operator):
    """Operators on the argument as text (numeric comparisons, substring tests)."""

    __slots__ = ("fixed", "func")

    def __init__(self, name: str, arg: str, negated: bool, func: Callable[[bytes, bytes], bool]) -> None:
        super().__init__(name, arg, negated)
        self.func = func
        self.fixed = arg.encode("latin-1", "replace")

    def _test(self, value: bytes, expand: Expand) -> tuple[bytes, ...] | None:
        arg = expand(self.arg).encode("latin-1", "replace") if self.dynamic else self.fixed
        return () if self.func(value, arg) else None


def _byte_ranges(arg: str) -> frozenset[int]:
    allowed: set[int] = set()
    for part in arg.replace(" ", "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        allowed.update(range(int(low), int(high or low) + 1))
    return frozenset(allowed)


class _ByteRange(Operator):
    __slots__ = ("table",)

    def __init__(self, name: str, arg: str, negated: bool) -> None:
        super().__init__(name, arg, negated)
        allowed = _byte_ranges(arg)
        # translate() deletes every allowed byte: anything left is outside the ranges.
        self.table = bytes(sorted(allowed))

    def _test(self, value: bytes, expand: Expand) -> tuple[bytes, ...] | None:
        return () if value.translate(None, self.table) else None


_HEX = b"0123456789abcdefABCDEF"


def _bad_url_encoding(value: bytes, _arg: bytes) -> bool:
    i = value.find(b"%")
    while i >= 0:
        if i + 2 >= len(value):
            return True
        if value[i + 1] not in _HEX or value[i + 2] not in _HEX:
            return True
        i = value.find(b"%", i + 3)
    return False


def _bad_utf8(value: bytes, _arg: bytes) -> bool:
    if value.isascii():
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _sqli(value: bytes, _arg: bytes) -> bool:
    return bool(value) and bool(libinjection.is_sql_injection(value.decode("latin-1"))["is_sqli"])


def _xss(value: bytes, _arg: bytes) -> bool:
    return bool(value) and bool(libinjection.is_xss(value.decode("latin-1"))["is_xss"])


def _ip_match(arg: str) -> Callable[[bytes, bytes], bool]:
    networks = [ipaddress.ip_network(part.strip(), strict=False) for part in arg.split(",") if part.strip()]

    # Parsing an address costs more than the rest of a request's rule: the answers for the last addresses
    # seen are kept (a pure function of the address).
    @functools.lru_cache(maxsize=4096)
    def contains(value: bytes) -> bool:
        try:
            address = ipaddress.ip_address(value.decode("latin-1"))
        except ValueError:
            return False
        return any(address in network for network in networks)

    def match(value: bytes, _arg: bytes) -> bool:
        return contains(value)

    return match


_SIMPLE: dict[str, Callable[[bytes, bytes], bool]] = {
    "eq": lambda v, a: _atoi(v) == _atoi(a),
    "ge": lambda v, a: _atoi(v) >= _atoi(a),
    "gt": lambda v, a: _atoi(v) > _atoi(a),
    "le": lambda v, a: _atoi(v) <= _atoi(a),
    "lt": lambda v, a: _atoi(v) < _atoi(a),
    "streq": lambda v, a: v == a,
    "contains": lambda v, a: a in v,
    "beginswith": lambda v, a: v.startswith(a),
    "endswith": lambda v, a: v.endswith(a),
    "within": lambda v, a: bool(v) and v in a,
    "unconditionalmatch": lambda v, a: True,
    "validateurlencoding": _bad_url_encoding,
    "validateutf8encoding": _bad_utf8,
    "detectsqli": _sqli,
    "detectxss": _xss,
}


def _phrases_from_files(arg: str, data_dir: Path) -> list[str]:
    phrases: list[str] = []
    for name in arg.split():
        for line in (data_dir / name).read_text("utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                phrases.append(line)
    return phrases


def compile_operator(text: str, data_dir: Path) -> Operator:
    """``"!@rx ^a"`` -> an :class:`Operator`. A bare string is ``@rx`` (SecLang's default).

    Raises:
        OperatorError: an unknown operator or an argument it cannot compile.
    """
    negated = text.startswith("!")
    if negated:
        text = text[1:]
    if not text.startswith("@"):
        return Rx("rx", text, negated)
    name, _, arg = text[1:].partition(" ")
    key = name.lower()
    if key == "rx":
        return Rx(key, arg, negated)
    if key == "pm":
        return _Pm(key, arg, negated, arg.split())
    if key == "pmfromfile":
        return _Pm(key, arg, negated, _phrases_from_files(arg, data_dir))
    if key == "validatebyterange":
        return _ByteRange(key, arg, negated)
    if key == "ipmatch":
        return _Simple(key, arg, negated, _ip_match(arg))
    func = _SIMPLE.get(key)
    if func is None:
        raise OperatorError(f"unsupported operator @{name}")
    return _Simple(key, arg, negated, func)
