"""The ``matches`` operator: Cloudflare-compatible syntax checks, then RE2.

Cloudflare runs Rust ``regex`` with ``unicode(false)`` and ``utf8(false)``: byte-oriented, ASCII
classes. RE2 in Latin-1 mode behaves the same on bytes and is linear-time like Rust's engine,
but its syntax differs in a few places. ``check_pattern`` refuses what Rust refuses and RE2 would
accept (``\\Q…\\E``, ``\\C``, ``\\pN`` without ``(?u)``, octal escapes), and ``to_re2`` rewrites the
few spellings Rust accepts and RE2 does not (``\\u0041``, ``\\<``/``\\>``). Remaining differences
are listed in ``docs/waf.md``.

Hot path: the pybind11 call into RE2 costs about 1 µs, so patterns that are a few literals,
optionally anchored or case-folded (``^/api/``, ``^/wp-(admin|login)\\.php``, ``(?i)<script``), are
matched with ``bytes`` methods instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

import re2

__all__ = ["RegexError", "anchored_prefix", "check_pattern", "compile_regex", "re2_options"]

_REJECTED_ESCAPES: Final = {
    "Q": "unrecognized escape sequence",
    "E": "unrecognized escape sequence",
    "C": "unrecognized escape sequence",
    "X": "unrecognized escape sequence",
    "R": "unrecognized escape sequence",
    "h": "unrecognized escape sequence",
    "e": "unrecognized escape sequence",
}
_UNICODE_FLAG: Final = re.compile(r"\(\?([a-zA-Z-]*)u([a-zA-Z-]*)([:)])")
_EMPTY_MIN_REPEAT: Final = re.compile(r"(?<!\\)\{,")
_META: Final = frozenset(".^$*+?()[]{}|\\")
_LITERAL_ESCAPES: Final = _META | {"/", "-"}
"""Escapes that mean the character itself in both Rust and RE2 (``\\<`` is a word boundary in Rust)."""
_MAX_LITERALS: Final = 16
"""Above this many expansions a literal alternation goes to RE2 (one linear scan, not many)."""
_RE2_MAX_MEM: Final = 10 << 20
"""Cloudflare's compiled-size limit (``regex_compiled_size_limit``, spec §1.5)."""


class RegexError(ValueError):
    pass


def re2_options(max_mem: int | None = None, *, case_sensitive: bool = True, never_capture: bool = False) -> re2.Options:
    """RE2's options for every regex of the WAF (the Rules language's and the managed rules'): bytes as Latin-1
    (byte-oriented matching, as Cloudflare's Rust ``regex`` does), errors returned, never printed; ``max_mem``
    None keeps RE2's default (8 MiB)."""
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.log_errors = False
    if max_mem is not None:
        options.max_mem = max_mem
    if not case_sensitive:
        options.case_sensitive = False
    if never_capture:
        options.never_capture = True
    return options


def to_re2(pattern: str) -> str:
    """Check ``pattern`` against Rust's syntax and return the RE2 spelling of it.

    Raises:
        RegexError: ``regex parse error: …`` when Cloudflare would refuse the pattern.
    """
    unicode_on = _UNICODE_FLAG.search(pattern) is not None
    if _EMPTY_MIN_REPEAT.search(pattern):
        raise RegexError("regex parse error: repetition quantifier expects a valid decimal")
    # RE2 has no `u` flag; in Latin-1 mode its Unicode classes still parse, so drop the flag.
    pattern = _UNICODE_FLAG.sub(
        lambda m: (
            "" if m.group(1) + m.group(2) == "" and m.group(3) == ")" else f"(?{m.group(1)}{m.group(2)}{m.group(3)}"
        ),
        pattern,
    )
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = pattern[i + 1 : i + 2]
        if e in _REJECTED_ESCAPES:
            raise RegexError(f"regex parse error: {_REJECTED_ESCAPES[e]}")
        if e.isdigit():
            raise RegexError("regex parse error: backreferences are not supported")
        if e in ("p", "P") and not unicode_on:
            raise RegexError("regex parse error: Unicode not allowed here")
        if e in ("u", "U") and pattern[i + 2 : i + 3] != "{":
            width = 4 if e == "u" else 8
            digits = pattern[i + 2 : i + 2 + width]
            out.append("\\x{" + digits + "}")
            i += 2 + width
            continue
        if e in ("<", ">"):
            out.append("\\b")
            i += 2
            continue
        if e == "u":
            out.append("\\x")
            i += 2
            continue
        out.append(pattern[i : i + 2])
        i += 2
    return "".join(out)


def check_pattern(pattern: str) -> None:
    """Raise ``RegexError`` unless ``pattern`` compiles the way Cloudflare would accept it."""
    _compile_re2(to_re2(pattern))


def _compile_re2(pattern: str) -> re2._Regexp:
    # Latin-1 keeps RE2 byte-oriented; non-ASCII pattern text is matched as its UTF-8 bytes,
    # which is what Rust's utf8(false) engine does with a literal "é".
    source = pattern.encode("utf-8", "surrogatepass")
    try:
        return re2.compile(source, re2_options(_RE2_MAX_MEM, never_capture=True))
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise RegexError(f"regex parse error: {detail}") from None


def _literals(body: str) -> list[str] | None:
    """The finite set of strings ``body`` matches, if it is literals and ``(a|b)`` groups only.

    Refuses (None) anything else: classes, quantifiers, top-level ``|``, nested groups, flags,
    escapes other than ``_LITERAL_ESCAPES``, non-ASCII, more than ``_MAX_LITERALS`` expansions.
    """
    out = [""]
    i = 0
    while i < len(body):
        c = body[i]
        if c == "(":
            close = body.find(")", i)
            group = body[i + 1 : close] if close > 0 else "("
            if group.startswith("?:"):
                group = group[2:]
            if "(" in group or group.startswith("?"):
                return None
            options: list[str] = []
            for alternative in group.split("|"):
                expanded = _literals(alternative)
                if expanded is None:
                    return None
                options += expanded
            out = [head + option for head in out for option in options]
            i = close + 1
        elif c == "\\":
            escaped = body[i + 1 : i + 2]
            if escaped not in _LITERAL_ESCAPES:
                return None  # \d, \b, \<, \x41...: not a plain literal
            out = [head + escaped for head in out]
            i += 2
        elif c in _META or not c.isascii():
            return None
        else:
            out = [head + c for head in out]
            i += 1
        if len(out) > _MAX_LITERALS:
            return None
    return out


def _literal_fast_path(pattern: str) -> Callable[[bytes], bool] | None:
    """``bytes`` methods for patterns that are a few literals, optionally anchored.

    ``^/wp-(admin|login)\\.php`` is ``value.startswith((b"/wp-admin.php", b"/wp-login.php"))``;
    ``(?i)<script`` is ``b"<script" in value.lower()``. A leading ``(?i)`` is exact with ASCII-only
    literals: no Latin-1 byte folds to an ASCII letter except its own case pair. Each RE2 call
    avoided saves ~0.6 µs (bench/waf_eval.py).
    """
    fold = pattern.startswith("(?i)")
    body = pattern[4:] if fold else pattern
    anchored_start = body.startswith("^")
    if anchored_start:
        body = body[1:]
    anchored_end = body.endswith("$") and not body.endswith("\\$")
    if anchored_end:
        body = body[:-1]
    literals = _literals(body)
    if literals is None:
        return None
    lits = tuple(dict.fromkeys(lit.lower() if fold else lit for lit in literals))
    encoded = tuple(lit.encode() for lit in lits)
    if fold:
        inner = _literal_matcher(encoded, anchored_start, anchored_end)
        return lambda value: inner(value.lower())  # bytes.lower() folds ASCII only, as Rust's (?i)
    return _literal_matcher(encoded, anchored_start, anchored_end)


def _literal_matcher(lits: tuple[bytes, ...], start: bool, end: bool) -> Callable[[bytes], bool]:
    if start and end:
        exact = frozenset(lits)
        return lambda value: value in exact
    if start:
        return lambda value: value.startswith(lits)
    if end:
        # Rust `$` without (?m) matches only at the very end, like bytes.endswith.
        return lambda value: value.endswith(lits)
    if len(lits) == 1:
        only = lits[0]
        return lambda value: value.find(only) >= 0  # `only in value` is 2x slower (codegen.py)
    return lambda value: any(value.find(lit) >= 0 for lit in lits)


def _top_level_alternation(pattern: str) -> bool:
    """Whether ``pattern`` may have a ``|`` outside every group (then ``^`` anchors one branch only).

    Conservative: a pattern with both a ``|`` and a character class (where ``(``, ``)`` and ``|`` are
    literals, and Rust allows nested classes) counts as having one."""
    if "|" not in pattern:
        return False
    if "[" in pattern:
        return True
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth <= 0:
            return True
        i += 1
    return False


_OPTIONAL: Final = frozenset("?*{")
"""Quantifiers after which the preceding literal may be absent (``{0,n}`` among the braces)."""


def anchored_prefix(pattern: str) -> bytes:
    """Bytes every value ``pattern`` matches starts with: its literal head after a leading ``^``.

    ``^/\\.git`` gives ``b"/.git"``, ``^/wp-(admin|login)`` ``b"/wp-"``. Empty when there is none: not
    anchored (a leading flag group such as ``(?i)`` or ``(?m)`` counts as not anchored), a possible
    top-level alternation, or a metacharacter right after the ``^``. A literal followed by ``?``, ``*`` or
    ``{`` is left out (it may be absent). Only ASCII literals are taken. ``waf/prefilter.py`` skips the
    rule when the value does not start with it, so it must never be longer than what every match needs.
    """
    if not pattern.startswith("^") or _top_level_alternation(pattern):
        return b""
    out: list[str] = []
    i = 1
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            literal = pattern[i + 1 : i + 2]
            if literal not in _LITERAL_ESCAPES:
                break  # \d, \b, \x41, \<: a class, an assertion or a spelling this does not decode
            step = 2
        elif c in _META or not c.isascii():
            break
        else:
            literal, step = c, 1
        if pattern[i + step : i + step + 1] in _OPTIONAL:
            break
        out.append(literal)
        i += step
    return "".join(out).encode()


def compile_regex(pattern: str) -> Callable[[bytes], bool]:
    """An unanchored-search predicate over bytes for a pattern that passed ``check_pattern``."""
    fast = _literal_fast_path(pattern)
    if fast is not None:
        return fast
    compiled = _compile_re2(to_re2(pattern))
    search = compiled._regexp.Match
    unanchored = re2._Anchor.UNANCHORED
    null = (-1, -1)

    def match(value: bytes) -> bool:
        return bool(search(unanchored, value, 0, len(value))[0] != null)

    return match
