"""A ruleset's scan as a tree of small objects, evaluated by compiled code (mypyc; ``buildtools/hotpath.py``).

Why: the generated scan (``codegen.py``) is Python source exec'd at run time, so it is always interpreted:
on the product benchmark's 25 rules it was ≈ 10k instructions per request, half of what those rules cost
(docs/performance.md, "Issue 11, waf3"). Here every test a rule makes is one object whose ``holds`` is a
compiled method, and a scan walks a list of blocks (a prefilter group's test, then its rules; or rules
alone). ``scan_plan.py`` builds these objects from the typed AST, mirroring what ``codegen.py`` inlines, and
keeps anything else as the rule's (or sub-expression's) generated predicate, wrapped in :class:`Predicate`.

Semantics are the reference's (``compiler.py``): a missing field (None) makes every comparison false
(scans never use wirefilter's ``missing ne x`` option); ``lower``/``upper`` of a missing value are missing.
A differential test (``tests/waf/test_scan_plan.py``) checks each scan against the reference, compiled and
interpreted. Field values come from ``FieldValues`` (a dict whose ``__missing__`` computes a field), read
once per test that needs them.

Interpreted (an editable install, or no C compiler) this tree is slower than the generated code, so
``compiler.compile_scan`` uses it only when this module is compiled (:data:`COMPILED`).

Nothing here imports the rest of the package: the module compiles on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, cast

__all__ = [
    "COMPILED",
    "GE",
    "GT",
    "LE",
    "LOWER",
    "LT",
    "NE",
    "NONE",
    "UPPER",
    "Affix",
    "All",
    "AnyOf",
    "Block",
    "Call",
    "Contains",
    "Equal",
    "IsTrue",
    "Member",
    "Not",
    "Order",
    "Predicate",
    "RuleScan",
    "Test",
    "Xor",
]

#: True when this module runs as mypyc-compiled code (its file is then an extension module, not ``.py``).
COMPILED: Final = not __file__.endswith(".py")

#: How a test's subject is read: the field's value itself, or ``lower()``/``upper()`` of it.
NONE: Final = 0
LOWER: Final = 1
UPPER: Final = 2
#: The comparisons of :class:`Order` (``eq`` is :class:`Equal`).
NE: Final = 1
LT: Final = 2
LE: Final = 3
GT: Final = 4
GE: Final = 5

#: FieldValues: a dict whose ``__missing__`` computes a field. Read with ``dict.get`` (one C lookup): a dict
#: subclass's ``v[name]`` goes through Python's generic ``__getitem__`` slot (≈ 370 instructions a read).
Values = dict[str, object]
_ABSENT: Final = object()


def _subject(v: Values, name: str, fold: int) -> object:
    """The value a test compares: ``v[name]``, folded; None (missing) stays None."""
    x = v.get(name, _ABSENT)
    if x is _ABSENT:
        x = v[name]  # not computed yet: FieldValues.__missing__ computes and keeps it
    if x is None or fold == NONE:
        return x
    if fold == LOWER:
        return x.lower()  # type: ignore[attr-defined]
    return x.upper()  # type: ignore[attr-defined]


class Test:
    """A Bool expression over one request's field values."""

    def holds(self, v: Values) -> bool:
        raise NotImplementedError


class Equal(Test):
    """``subject eq literal`` (Bytes, Int or IP literal)."""

    def __init__(self, name: str, fold: int, literal: object) -> None:
        self.name = name
        self.fold = fold
        self.literal = literal

    def holds(self, v: Values) -> bool:
        x = _subject(v, self.name, self.fold)
        return x is not None and x == self.literal


class Order(Test):
    """``subject op literal`` for a Bytes or Int literal (``op``: :data:`NE` … :data:`GE`)."""

    def __init__(self, name: str, fold: int, op: int, literal: object) -> None:
        self.name = name
        self.fold = fold
        self.op = op
        self.literal = literal

    def holds(self, v: Values) -> bool:
        x = _subject(v, self.name, self.fold)
        if x is None:
            return False
        op = self.op
        y = self.literal
        if op == NE:
            return x != y
        if op == LT:
            return bool(x < y)  # type: ignore[operator]
        if op == LE:
            return bool(x <= y)  # type: ignore[operator]
        if op == GT:
            return bool(x > y)  # type: ignore[operator]
        return bool(x >= y)  # type: ignore[operator]


class Contains(Test):
    """``subject contains needle``; ``find`` rather than ``in``, which first tries the needle as an int."""

    def __init__(self, name: str, fold: int, needle: bytes) -> None:
        self.name = name
        self.fold = fold
        self.needle = needle

    def holds(self, v: Values) -> bool:
        x = _subject(v, self.name, self.fold)
        if isinstance(x, bytes) and len(x) < len(self.needle):
            return False  # the usual empty query: no method call
        return x is not None and x.find(self.needle) >= 0  # type: ignore[attr-defined]


class Affix(Test):
    """``starts_with(subject, affix)`` or ``ends_with``, or (a prefilter group's test) starting with any of
    ``affixes``."""

    def __init__(self, name: str, fold: int, affixes: tuple[bytes, ...], end: bool) -> None:
        self.name = name
        self.fold = fold
        self.affixes = affixes
        self.end = end

    def holds(self, v: Values) -> bool:
        x = _subject(v, self.name, self.fold)
        if x is None:
            return False
        if not isinstance(x, bytes):
            return bool(x.endswith(self.affixes) if self.end else x.startswith(self.affixes))  # type: ignore[attr-defined]
        # One affix at a time: bytes.startswith on bytes is a memcmp in compiled code, where a tuple argument
        # is a Python method call (≈ 1k instructions for the benchmark's six prefixes).
        for affix in self.affixes:  # noqa: SIM110 (as Member's loops)
            if x.endswith(affix) if self.end else x.startswith(affix):
                return True
        return False


class Member(Test):
    """``subject in {…}``: single values, Int ranges (low, high) and IP ranges (family, low, high)."""

    def __init__(
        self,
        name: str,
        fold: int,
        singles: frozenset[object],
        ints: list[tuple[int, int]],
        ips: list[tuple[int, int, int]],
    ) -> None:
        self.name = name
        self.fold = fold
        self.singles = singles
        self.ints = ints
        self.ips = ips

    def holds(self, v: Values) -> bool:
        x = _subject(v, self.name, self.fold)
        if x is None:
            return False
        if x in self.singles:
            return True
        # Generic comparisons, as the reference's: a value of another type than the field's compares (or
        # fails) the same way in both.
        for low, high in self.ints:
            if low <= x <= high:  # type: ignore[operator]
                return True
        for family, low, high in self.ips:  # noqa: SIM110 (loops: any() of a generator costs an object in mypyc)
            if x[0] == family and low <= x[1] <= high:  # type: ignore[index]
                return True
        return False


class Call(Test):
    """``test(subject)`` for the reference's test functions (RE2 matchers, wildcards, list membership)."""

    def __init__(self, name: str, fold: int, test: Callable[[object], object]) -> None:
        self.name = name
        self.fold = fold
        self.test = test

    def holds(self, v: Values) -> bool:
        x = _subject(v, self.name, self.fold)
        return x is not None and bool(self.test(x))


class IsTrue(Test):
    """A Bool field used as the expression (``ssl``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def holds(self, v: Values) -> bool:
        return v[self.name] is True


class Not(Test):
    def __init__(self, inner: Test) -> None:
        self.inner = inner

    def holds(self, v: Values) -> bool:
        return not self.inner.holds(v)


class All(Test):
    """``and``: every part, left to right, stopping at the first false one."""

    def __init__(self, parts: list[Test]) -> None:
        self.parts = parts

    def holds(self, v: Values) -> bool:
        for part in self.parts:  # noqa: SIM110 (as Member's loops)
            if not part.holds(v):
                return False
        return True


class AnyOf(Test):
    """``or``: the parts left to right, stopping at the first true one."""

    def __init__(self, parts: list[Test]) -> None:
        self.parts = parts

    def holds(self, v: Values) -> bool:
        for part in self.parts:  # noqa: SIM110 (as Member's loops)
            if part.holds(v):
                return True
        return False


class Xor(Test):
    def __init__(self, parts: list[Test]) -> None:
        self.parts = parts

    def holds(self, v: Values) -> bool:
        out = False
        for part in self.parts:
            out = out != part.holds(v)
        return out


class Predicate(Test):
    """Any other expression: its generated predicate (``compiler.compile_expression``)."""

    def __init__(self, predicate: Callable[[Values], object]) -> None:
        self.predicate = predicate

    def holds(self, v: Values) -> bool:
        return bool(self.predicate(v))


class Block:
    """Rules tested in order (``indexes``: their places in the ruleset), all skipped when ``guard`` (a
    prefilter group's test, implied by each rule's) is false."""

    def __init__(self, guard: Test | None, tests: list[Test], indexes: list[int]) -> None:
        self.guard = guard
        self.tests = tests
        self.indexes = indexes


class RuleScan:
    """A ruleset's rules: the index of the first one matching, or -1 (the ``compiler.Scan`` protocol)."""

    def __init__(self, blocks: list[Block]) -> None:
        self.blocks = blocks

    def __call__(self, v: Mapping[str, Any]) -> int:
        return self.first(cast(Values, v))  # always a FieldValues (a dict)

    def first(self, v: Values) -> int:
        for block in self.blocks:
            guard = block.guard
            if guard is not None and not guard.holds(v):
                continue
            tests = block.tests
            for i in range(len(tests)):
                if tests[i].holds(v):
                    return block.indexes[i]
        return -1
