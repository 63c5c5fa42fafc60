"""The values a rule's operator sees: its targets' values through the rule's transformation chain.

A request's values pass through the same few chains (``t:urlDecodeUni,t:lowercase`` opens most CRS
rules) for hundreds of rules: every step is memoised per request on the transaction (``t.steps``, by input
value and transformation name), whole chains by value and chain key (``t.cache``), and the distinct
results per target and chain (``t.candidates``). Values a chain cannot change (``t.features`` says none
of its triggering characters occur) are passed on as they are. Pure: no I/O.
"""

from __future__ import annotations

from .compiler import SecRule
from .transaction import Item, Transaction
from .transforms import features as value_features
from .variables import Target, target_values

__all__ = ["candidates", "chain", "intermediates", "transformed"]


def chain(link: SecRule, value: bytes, memo: dict[tuple[bytes, str], bytes]) -> bytes:
    """``value`` through ``link``'s transformations, each step looked up first: chains that share a step on
    the same input (``t:urlDecodeUni`` opens most CRS chains) compute it once per request."""
    for name, transform in zip(link.transform_names, link.transforms, strict=True):
        step = (value, name)
        result = memo.get(step)
        if result is None:
            result = memo[step] = transform(value)
        value = result
    return value


def intermediates(link: SecRule, value: bytes, memo: dict[tuple[bytes, str], bytes]) -> list[bytes]:
    """``value`` and each different value the chain makes of it (what ``multiMatch`` tests)."""
    out = [value]
    for name, transform in zip(link.transform_names, link.transforms, strict=True):
        step = (value, name)
        result = memo.get(step)
        if result is None:
            result = memo[step] = transform(value)
        value = result
        if value != out[-1]:
            out.append(value)
    return out


def candidates(link: SecRule, target: Target, t: Transaction, *, with_unchanged: bool) -> list[bytes]:
    """The distinct values ``link``'s operator may see from ``target``: the transformed values (every
    intermediate one for ``multiMatch``), and with ``with_unchanged`` the values the chain leaves as
    they are (which @rx already has the hits of)."""
    key = (target.text, link.transform_key, link.multimatch, with_unchanged)
    found = t.candidates.get(key)
    if found is not None:
        return found
    values = list(dict.fromkeys(target_values(t, target)))
    if not link.transform_key:
        found = values
    else:
        triggers = link.transform_triggers
        features = t.features
        out: dict[bytes, None] = {}
        for value in values:
            bits = features.get(value)
            if bits is None:
                bits = features[value] = value_features(value)
            if not bits & triggers:
                if with_unchanged:
                    out[value] = None
                continue
            if link.multimatch:
                for step in intermediates(link, value, t.steps):
                    out[step] = None
            else:
                result = t.cache.get((value, link.transform_key))
                if result is None:
                    result = t.cache[(value, link.transform_key)] = chain(link, value, t.steps)
                out[result] = None
        found = list(out)
    t.candidates[key] = found
    return found


def transformed(link: SecRule, items: list[Item], t: Transaction) -> list[Item]:
    key = link.transform_key
    if not key:
        return items
    cache = t.cache
    memo = t.steps
    features = t.features
    triggers = link.transform_triggers
    out: list[Item] = []
    for name, value in items:
        found = features.get(value)
        if found is None:
            found = features[value] = value_features(value)
        if not found & triggers:
            out.append((name, value))
            continue
        cached = cache.get((value, key))
        if cached is None:
            cached = cache[(value, key)] = chain(link, value, memo)
        out.append((name, cached))
    return out
