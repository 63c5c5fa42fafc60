"""SecLang directives as text: split a ``.conf`` file into SecRule / SecAction / SecMarker records.

Theory of operation. ModSecurity's configuration language is line-based with ``\\`` continuations;
a ``SecRule`` has three (or two) arguments, each either a bare word or a double-quoted string in
which ``\\"`` escapes a quote. The action list is comma-separated ``name`` or ``name:value`` items,
where a value may be single-quoted (and then hold commas). Only the directives the CRS uses are
kept; anything else is refused with the line number, so a new directive in a CRS update fails the
loader's test rather than being silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Directive", "SecLangError", "parse_actions", "parse_directives"]

_KNOWN = frozenset({"SecRule", "SecAction", "SecMarker", "SecRuleUpdateTargetById", "SecComponentSignature"})


class SecLangError(ValueError):
    """A directive the loader cannot read."""


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    args: tuple[str, ...]
    line: int
    source: str


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buffer:
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            start = number
        if line.endswith("\\"):
            buffer.append(line[:-1])
            continue
        buffer.append(line)
        out.append((start, "".join(buffer).strip()))
        buffer = []
    if buffer:
        out.append((start, "".join(buffer).strip()))
    return out


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The quoted string whose quote character is ``text[start - 1]``, from ``start``: its value (a backslash
    before that quote escapes it; other backslashes stay) and the index of the closing quote (``len(text)``
    when there is none)."""
    quote = text[start - 1]
    chars: list[str] = []
    i, n = start, len(text)
    while i < n and text[i] != quote:
        if text[i] == "\\" and i + 1 < n and text[i + 1] == quote:
            chars.append(quote)
            i += 2
            continue
        chars.append(text[i])
        i += 1
    return "".join(chars), i


def _split_args(line: str) -> list[str]:
    args: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        if line[i] == '"':
            value, i = _quoted(line, i + 1)
            if i >= n:
                raise SecLangError("unterminated quoted argument")
            i += 1
            args.append(value)
        else:
            j = i
            while j < n and not line[j].isspace():
                j += 1
            args.append(line[i:j])
            i = j
    return args


def parse_directives(text: str, source: str = "<string>") -> list[Directive]:
    """The directives of one file, in order.

    Raises:
        SecLangError: an unknown directive or a malformed argument list, with ``source:line``.
    """
    out: list[Directive] = []
    for number, line in _logical_lines(text):
        try:
            args = _split_args(line)
        except SecLangError as exc:
            raise SecLangError(f"{source}:{number}: {exc}") from None
        name = args[0]
        if name not in _KNOWN:
            raise SecLangError(f"{source}:{number}: unsupported directive {name}")
        out.append(Directive(name, tuple(args[1:]), number, source))
    return out


def parse_actions(text: str) -> list[tuple[str, str]]:
    """``"id:1,phase:2,t:none,msg:'a, b'"`` -> ``[("id", "1"), ("phase", "2"), ("t", "none"), ("msg", "a, b")]``."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            break
        j = i
        while j < n and text[j] not in ":,":
            j += 1
        name = text[i:j].strip()
        value = ""
        if j < n and text[j] == ":":
            j += 1
            while j < n and text[j] == " ":
                j += 1
            if j < n and text[j] == "'":
                value, k = _quoted(text, j + 1)
                j = k + 1
            else:
                k = j
                while k < n and text[k] != ",":
                    k += 1
                value = text[j:k].strip()
                j = k
        out.append((name.lower() if name.lower() != "t" else "t", value))
        i = j
    return out
