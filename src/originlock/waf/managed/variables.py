"""Rule targets (``ARGS|!ARGS:foo|REQUEST_HEADERS:/^x-/|&TX:bar``) compiled into value extractors.

A :class:`Targets` yields the (name, value) items a rule inspects for one transaction: each positive
target's values minus the excluded keys (``!COLLECTION:key`` applies to every target of that
collection, as in ModSecurity), or the count of values for ``&``. Key selectors are exact names
(case-insensitive, as ModSecurity compares collection keys) or ``/regex/`` on RE2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import re2

from originlock.waf.regex import re2_options

from .transaction import KEYED_COLLECTIONS, SCALAR_VARIABLES, Item, Transaction
from .transforms import features as _features

__all__ = ["Selector", "Target", "TargetError", "Targets", "parse_targets", "target_features", "target_values"]


class TargetError(ValueError):
    pass


_OPTIONS = re2_options(case_sensitive=False)
_KNOWN_MAX = 4096


class Selector:
    """A key selector: an exact (case-insensitive) key or a regex."""

    __slots__ = ("known", "literal", "regex", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.literal: bytes | None = None
        self.regex: re2._Regexp | None = None
        self.known: dict[bytes, bool] = {}
        """Regex results by key, kept across requests up to ``_KNOWN_MAX`` keys: the keys a regex
        selector reads are mostly the same names every request (the CRS's TX variables)."""
        if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
            try:
                self.regex = re2.compile(text[1:-1].encode("utf-8"), _OPTIONS)
            except re2.error as exc:
                raise TargetError(f"key regex {text!r}: {exc}") from None
        else:
            self.literal = text.lower().encode("latin-1")

    def matches(self, key: bytes) -> bool:
        if self.literal is not None:
            return key.lower() == self.literal
        known = self.known.get(key)
        if known is None:
            assert self.regex is not None
            known = self.regex.search(key) is not None
            if len(self.known) < _KNOWN_MAX:
                self.known[key] = known
        return known


@dataclass(slots=True)
class Target:
    collection: str
    selector: Selector | None = None
    count: bool = False
    text: str = field(init=False, default="")
    """``COLLECTION`` or ``COLLECTION:selector``: names what the target reads (per-request caches)."""

    def __post_init__(self) -> None:
        self.text = self.collection + (":" + self.selector.text if self.selector is not None else "")


def target_values(t: Transaction, target: Target) -> list[bytes]:
    """The values of one positive target before any exclusion (cached per request): a superset of what
    a rule reading it inspects, whatever its exclusions and the ``ctl`` removals of the request."""
    key = target.text
    values = t.target_values.get(key)
    if values is None:
        name = target.collection
        if target.selector is None and name in _PLAIN:
            values = [value for _, value in t.keyed(name)]
        else:
            values = [value for _, value in _items(t, target, [])]
        t.target_values[key] = values
    return values


def target_features(t: Transaction, target: Target) -> int:
    """The union of ``transforms.features`` of the target's values (cached per request)."""
    key = target.text
    found = t.target_features.get(key)
    if found is None:
        found = 0
        features = t.features
        for value in target_values(t, target):
            bits = features.get(value)
            if bits is None:
                bits = features[value] = _features(value)
            found |= bits
        t.target_features[key] = found
    return found


def _items(t: Transaction, target: Target, excluded: list[Selector]) -> list[Item]:
    name = target.collection
    selector = target.selector
    if name in SCALAR_VARIABLES:
        if name == "MATCHED_VAR":
            return [(name, t.matched_var[1])] if t.matched_var[0] else []
        if name == "MATCHED_VAR_NAME":
            return [(name, t.matched_var[0].encode("latin-1"))] if t.matched_var[0] else []
        value = t.scalar(name)
        return [] if value is None else [(name, value)]
    if name == "MATCHED_VARS":
        return list(t.matched_vars)
    if name == "MATCHED_VARS_NAMES":
        return [(n, n.encode("latin-1")) for n, _ in t.matched_vars]
    if name == "XML":
        xml = t.xml()
        if xml is None:
            return []
        if selector is not None and "@" in selector.text:
            return [("XML", value) for value in xml[1]]
        return [("XML", xml[0])]
    if name == "TX":
        if selector is not None and selector.literal is not None:
            key_text = selector.literal.decode("latin-1")
            found = t.tx.get(key_text)
            return [] if found is None else [(f"TX:{key_text}", found)]
        pairs = [(k.encode("latin-1"), v) for k, v in t.tx.items()]
    elif selector is not None and selector.literal is not None:
        pairs = t.indexed(name).get(selector.literal, [])
        selector = None
    else:
        pairs = t.keyed(name)
    out: list[Item] = []
    prefix = name + ":"
    for key, value in pairs:
        if selector is not None and not selector.matches(key):
            continue
        if excluded and any(s.matches(key) for s in excluded):
            continue
        out.append((prefix + key.decode("latin-1"), value))
    return out


class Targets:
    """The compiled target list of one rule."""

    __slots__ = ("cacheable", "excluded", "key", "positive", "targets")

    def __init__(self, targets: list[Target], excluded: dict[str, list[Selector]], key: str = "") -> None:
        self.targets = targets
        self.excluded = excluded
        self.key = key
        """The target text: rules with equal text read the same items (cached per request)."""
        self.cacheable = bool(key) and not any(t.collection in _VOLATILE for t in targets)
        self.positive: tuple[Target, ...] = ()
        """The targets, when their values can be read without exclusions for a prefilter (none counted
        or volatile); empty otherwise."""
        if self.cacheable and targets and not any(t.count for t in targets):
            self.positive = tuple(targets)

    def exclude(self, collection: str, selector: Selector, text: str) -> None:
        self.excluded.setdefault(collection, []).append(selector)
        self.key += "|!" + text

    def items(self, t: Transaction, extra_excluded: list[tuple[str, Selector | None]] | None = None) -> list[Item]:
        out: list[Item] = []
        for target in self.targets:
            excluded = self.excluded.get(target.collection, [])
            if extra_excluded:
                extra = [s for c, s in extra_excluded if c == target.collection]
                if None in extra:
                    continue  # ctl:ruleRemoveTarget… of the whole collection
                excluded = excluded + [s for s in extra if s is not None]
            items = _items(t, target, excluded)
            if target.count:
                label = f"&{target.collection}" + (f":{target.selector.text}" if target.selector else "")
                out.append((label, str(len(items)).encode()))
            else:
                out.extend(items)
        return out


def parse_targets(text: str) -> Targets:
    """``"ARGS|!ARGS:foo|&TX:x"`` -> :class:`Targets`.

    Raises:
        TargetError: an unknown collection or a bad key regex.
    """
    targets: list[Target] = []
    excluded: dict[str, list[Selector]] = {}
    for part in _split(text):
        negate = part.startswith("!")
        count = part.startswith("&")
        part = part.lstrip("!&")
        name, sep, key = part.partition(":")
        name = name.upper()
        if name not in KEYED_COLLECTIONS and name not in SCALAR_VARIABLES:
            raise TargetError(f"unsupported variable {name}")
        selector = Selector(key) if sep and key else None
        if negate:
            if selector is None:
                raise TargetError(f"exclusion without a key: !{part}")
            excluded.setdefault(name, []).append(selector)
        else:
            targets.append(Target(name, selector, count))
    return Targets(targets, excluded, text)


_PLAIN = frozenset(KEYED_COLLECTIONS - {"TX", "XML", "MATCHED_VARS", "MATCHED_VARS_NAMES"})
"""Collections whose values are the values of ``Transaction.keyed``."""
_VOLATILE = frozenset({"TX", "MATCHED_VAR", "MATCHED_VAR_NAME", "MATCHED_VARS", "MATCHED_VARS_NAMES"})
"""Collections that change while a request is evaluated: never cached."""


def _split(text: str) -> list[str]:
    """Split on ``|`` outside ``/regex/`` key selectors (a regex may hold ``|``). A selector is a regex
    when a ``/`` follows the ``:`` and a closing ``/`` ends the target (``XML:/*`` is not one)."""
    parts: list[str] = []
    i, start, n = 0, 0, len(text)
    while i < n:
        char = text[i]
        if char == ":" and i + 1 < n and text[i + 1] == "/":
            j, end = i + 2, -1
            while j < n:
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == "/" and (j + 1 == n or text[j + 1] == "|"):
                    end = j
                    break
                j += 1
            if end >= 0 and "|" not in text[i:end].split(":/", 1)[0]:
                i = end + 1
                continue
        if char == "|":
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]
