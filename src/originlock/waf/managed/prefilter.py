"""The engine's cheap first question: could any value of a rule's targets match? Most rules match nothing.

For a static ``@rx`` the RE2 set's hits (rx_set.py) answer it, for other static operators one pass over
the distinct transformed values (candidates.py) does.

The answers are supersets, computed from a target's values before a rule's exclusions and shared by
every rule that reads the target through the same chain (cached on the transaction); only a "maybe"
makes the engine read the rule's own values. Pure: no I/O.
"""

from __future__ import annotations

from .candidates import candidates, chain, intermediates
from .compiler import SecRule
from .operators import Operator, Rx
from .transaction import Item, Transaction
from .transforms import features as value_features
from .variables import Target, target_features, target_values

__all__ = ["UNKNOWN", "hits_of", "may_match", "target_hits", "union_hits"]

#: "Not looked up yet" in the per-request hit caches, where None means "the set could not tell".
UNKNOWN: frozenset[int] = frozenset({-1})


def union_hits(pairs: list[Item], t: Transaction) -> frozenset[int] | None:
    return hits_of([value for _name, value in pairs], t)


def may_match(link: SecRule, operator: Operator, t: Transaction) -> bool:
    assert link.targets is not None
    index = operator.set_index if isinstance(operator, Rx) else -1
    for target in link.targets.positive:
        if index >= 0:
            hits_key = (target.text, link.transform_key, link.multimatch)
            hits = t.target_hits.get(hits_key, UNKNOWN)
            if hits is UNKNOWN:
                hits = t.target_hits[hits_key] = target_hits(link, target, t)
            if hits is None or index in hits:
                return True
            continue
        for value in candidates(link, target, t, with_unchanged=True):
            if operator.test(value, _no_expand) is not None:
                return True
    return False


def target_hits(link: SecRule, target: Target, t: Transaction) -> frozenset[int] | None:
    """A superset of the RE2-set hits of ``target``'s values under ``link``'s transformations: the hits
    of every raw value (shared by all chains), plus those of the values the chain changes."""
    raw = t.target_hits.get((target.text, "", False), UNKNOWN)
    if raw is UNKNOWN:
        raw = t.target_hits[(target.text, "", False)] = hits_of(target_values(t, target), t)
    key = link.transform_key
    if not key or raw is None:
        return raw
    # One loop, no helper calls: a GET asks this for ~200 (target, chain) pairs of a few values each.
    triggers = link.transform_triggers
    if not target_features(t, target) & triggers:
        return raw
    features = t.features
    cache = t.cache
    rx_hits = t.rx_hits
    union = raw
    for value in target_values(t, target):
        bits = features.get(value)
        if bits is None:
            bits = features[value] = value_features(value)
        if not bits & triggers:
            continue
        if link.multimatch:
            outs = intermediates(link, value, t.steps)
        else:
            result = cache.get((value, key))
            if result is None:
                result = cache[(value, key)] = chain(link, value, t.steps)
            outs = [result]
        for out in outs:
            hits = rx_hits.get(out, UNKNOWN)
            if hits is UNKNOWN:
                hits = rx_hits[out] = t.rx_set.match(out)
            if hits is None:
                return None
            if not hits <= union:
                union = union | hits
    return union


def hits_of(values: list[bytes], t: Transaction) -> frozenset[int] | None:
    union: set[int] = set()
    rx_hits = t.rx_hits
    for value in set(values):
        hits = rx_hits.get(value, UNKNOWN)
        if hits is UNKNOWN:
            hits = rx_hits[value] = t.rx_set.match(value)
        if hits is None:
            return None
        union |= hits
    return frozenset(union)


def _no_expand(text: str) -> str:
    return text
