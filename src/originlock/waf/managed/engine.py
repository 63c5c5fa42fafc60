"""Evaluating compiled CRS rules for one request: phases 1 and 2, TX state, anomaly scoring.

Theory of operation. :class:`Engine` holds the compiled rules (shared by every zone and request).
``Engine.evaluate(request, config)`` creates a :class:`Transaction` seeded with the deployment's TX
settings (paranoia level, threshold, limits: what ``crs-setup.conf`` would set), then runs phase 1
and phase 2 in rule order, as ModSecurity does: a rule's targets are read, transformed (cached per
value and chain), tested by its operator; a chain matches only if every link does; on a match the
links' ``setvar``/``ctl`` actions run, the rule is recorded with the anomaly score it added, and
``skipAfter`` jumps to its marker. A ``deny`` rule (the CRS's blocking evaluation, 949110) ends
evaluation with the deployment's action for it; so does any rule whose action was overridden to a
terminating one. Pure: no I/O, no clock.

Most rules match nothing, so a rule first answers a cheaper question: could any value of its targets,
taken before its exclusions (a superset, shared by every rule reading that target through the same
chain), match? For a static ``@rx`` the RE2 set's hits answer it (in the rule loop itself); for other
static operators one pass over the distinct transformed values does. Only a "maybe" reads the rule's
own values (docs/waf.md, "Cost").
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from . import prefilter
from .candidates import intermediates, transformed
from .compiler import CompiledRules, Macro, SecRule, SetVar, Step
from .operators import Rx
from .prefilter import UNKNOWN
from .rx_set import RxSet
from .transaction import HttpRequest, HttpResponse, Item, Transaction
from .variables import Selector

__all__ = ["Engine", "EngineConfig", "Match", "Outcome"]

_SCORE_VARS = tuple(f"{way}_anomaly_score_pl{n}" for way in ("inbound", "outbound") for n in (1, 2, 3, 4))
"""What a rule's match adds to: the difference of their sum before and after its actions is its score."""
_INBOUND: Final = "blocking_inbound_anomaly_score"
_OUTBOUND: Final = "blocking_outbound_anomaly_score"
_INIT_SOURCE: Final = "REQUEST-901-INITIALIZATION.conf"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """One deployment's settings. Hashable, so equal deployments share one seeded TX."""

    paranoia_level: int = 1
    threshold: int = 5
    disabled: frozenset[int] = frozenset()
    actions: tuple[tuple[int, str], ...] = ()
    """Per rule id, the action a match takes (``log`` keeps scoring; anything else terminates)."""
    tx: tuple[tuple[str, str], ...] = ()
    """Extra TX settings (``max_num_args``, ``allowed_methods``…), as ``crs-setup.conf`` sets them."""
    outbound_threshold: int = 4
    """The outbound (response) anomaly threshold: the CRS's default, 4 (one ``ERROR`` leak)."""

    def settings(self) -> dict[str, bytes]:
        """The TX variables of this deployment's settings (paranoia levels and thresholds)."""
        return {
            "blocking_paranoia_level": str(self.paranoia_level).encode(),
            "detection_paranoia_level": str(self.paranoia_level).encode(),
            "inbound_anomaly_score_threshold": str(self.threshold).encode(),
            "outbound_anomaly_score_threshold": str(self.outbound_threshold).encode(),
        }

    def seed(self) -> dict[str, bytes]:
        values = {"crs_setup_version": b"4280", **self.settings()}
        for key, value in self.tx:
            values[key.lower()] = value.encode("latin-1")
        return values


@dataclass(frozen=True, slots=True)
class Match:
    rule_id: int
    score: int
    """Anomaly score this rule added (0 for rules that only set state or evaluate the score)."""
    msg: str = ""
    action: str = "log"


@dataclass(frozen=True, slots=True)
class Outcome:
    matches: tuple[Match, ...] = ()
    score: int = 0
    """The request's inbound anomaly score (at the blocking paranoia level)."""
    action: str | None = None
    """The terminating action (``block``…), or None."""
    rule_id: int | None = None
    """The rule that terminated evaluation."""
    tx: Mapping[str, bytes] = field(default_factory=dict)


def _expand(macro: Macro, t: Transaction, rule: SecRule) -> str:
    parts = macro.parts
    if len(parts) == 1:
        return parts[0]
    out = []
    for i, part in enumerate(parts):
        out.append(_resolve(part, t, rule) if i % 2 else part)
    return "".join(out)


def _resolve(name: str, t: Transaction, rule: SecRule) -> str:
    collection, _, key = name.partition(".")
    upper = collection.upper()
    if upper == "TX":
        return t.tx.get(key.lower(), b"").decode("latin-1")
    if upper == "MATCHED_VAR":
        return t.matched_var[1].decode("latin-1")
    if upper == "MATCHED_VAR_NAME":
        return t.matched_var[0]
    if upper == "RULE":
        return str(rule.id) if key.lower() == "id" else rule.msg
    if key:
        wanted = key.lower().encode("latin-1")
        for k, value in t.keyed(upper):
            if k.lower() == wanted:
                return value.decode("latin-1")
        return ""
    scalar = t.scalar(upper)
    return scalar.decode("latin-1") if scalar is not None else ""


def _score(t: Transaction) -> int:
    total = 0
    for name in _SCORE_VARS:
        raw = t.tx.get(name)
        if raw:
            with contextlib.suppress(ValueError):
                total += int(raw)
    return total


def _to_int(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        return 0


def _rx_set(rules: CompiledRules, phases: tuple[int, ...]) -> RxSet:
    """The ``@rx`` operators of the rules of ``phases`` (each rule's chain links too) in one RE2 set."""
    return RxSet(
        link.operator
        for rule in rules.rules()
        if rule.phase in phases
        for link in rule.links()
        if isinstance(link.operator, Rx)
    )


class Engine:
    """The compiled CRS: build once, evaluate any number of requests (from any zone)."""

    def __init__(self, rules: CompiledRules) -> None:
        self.rules = rules
        # One RE2 set per direction: the request's values are never scanned for the response regexes.
        self.rx_set = _rx_set(rules, (1, 2))
        self.response_rx_set = _rx_set(rules, (3, 4))
        self._seeds: dict[EngineConfig, dict[str, bytes]] = {}
        for rule in rules.rules():
            for link in rule.links():
                only = link.targets.targets if link.targets is not None else []
                if (
                    len(only) == 1
                    and only[0].collection == "TX"
                    and only[0].selector is not None
                    and only[0].selector.literal is not None
                    and not only[0].count
                    and not link.transforms
                    and not link.multimatch
                ):
                    link.tx_key = only[0].selector.literal.decode("latin-1")
                    link.tx_name = f"TX:{link.tx_key}"
            operator, targets = rule.operator, rule.targets
            if isinstance(operator, Rx) and operator.set_index >= 0 and not operator.negated and targets:
                rule.rx_index = operator.set_index
                rule.rx_keys = tuple(
                    (target, (target.text, rule.transform_key, rule.multimatch)) for target in targets.positive
                )

    def evaluate(self, request: HttpRequest, config: EngineConfig, *, phases: tuple[int, ...] = (1, 2)) -> Outcome:
        return self.run(self.transaction(request, config), config, phases)

    def transaction(self, request: HttpRequest, config: EngineConfig) -> Transaction:
        """A new transaction for ``request``, its TX seeded with ``config``'s settings."""
        seed = self._seeds.get(config)
        if seed is None:
            seed = self._seeds[config] = config.seed()
        return Transaction(request, dict(seed), self.rx_set)

    def initialize(self, t: Transaction, config: EngineConfig) -> None:
        """Only the CRS's initialization (REQUEST-901: TX defaults, scores at 0) on ``t``: what the response
        phases need of the request phases when a zone deploys the response rules alone."""
        self.run(t, config, (1,), steps=self._init_steps)

    def respond(self, t: Transaction, response: HttpResponse, config: EngineConfig) -> Outcome:
        """Phases 3 and 4 for ``response`` on the request's transaction ``t`` (its TX: paranoia level,
        scores, ``ctl`` removals), with ``config``'s settings (the response deployment's overrides: paranoia
        level, outbound threshold) replacing the request's. Outcome's score is the outbound one."""
        t.response = response
        t.tx.update(config.settings())
        # The response's regexes are in a set of their own, whose indices the request's hits do not
        # share; the per-value caches of the request phases are not read again: let them go.
        t.rx_set = self.response_rx_set
        for cache in (t.cache, t.steps, t.rx_hits, t.features, t.target_hits, t.group_hits, t.candidates):
            cache.clear()
        return self.run(t, config, (3, 4), score=_OUTBOUND)

    @functools.cached_property
    def _init_steps(self) -> list[Step]:
        steps = self.rules.phases.get(1, [])
        return [step for step in steps if isinstance(step, SecRule) and step.source == _INIT_SOURCE]

    def run(
        self,
        t: Transaction,
        config: EngineConfig,
        phases: tuple[int, ...],
        *,
        score: str = _INBOUND,
        steps: list[Step] | None = None,
    ) -> Outcome:
        """Run ``phases`` on an existing transaction (phase 1 at the headers, 2 once the body is read, 3 and
        4 for the response). ``score``: the TX variable the outcome reports; ``steps``: run these instead
        of the phase's (the initialization alone)."""
        matches: list[Match] = []
        actions = dict(config.actions)
        target_hits = t.target_hits
        only = steps
        for phase in phases:
            steps = only if only is not None else self.rules.phases.get(phase, [])
            # The initialization alone has one skipAfter (sampling), to its own end.
            markers = self.rules.markers.get(phase, {}) if only is None else {}
            i, n = 0, len(steps)
            while i < n:
                rule = steps[i]
                i += 1
                if isinstance(rule, str):
                    continue
                if rule.id in config.disabled or rule.id in t.removed_ids:
                    continue
                if t.removed_tags and not t.removed_tags.isdisjoint(rule.tags):
                    continue
                if rule.rx_keys:
                    # The RE2-set prefilter of _link_matches, inline: most rules end here.
                    index = rule.rx_index
                    for target, hits_key in rule.rx_keys:
                        hits = target_hits.get(hits_key, UNKNOWN)
                        if hits is UNKNOWN:
                            hits = target_hits[hits_key] = prefilter.target_hits(rule, target, t)
                        if hits is None or index in hits:
                            break
                    else:
                        continue
                before = self._matches(rule, t)
                if before < 0:
                    continue
                action = actions.get(rule.id)
                if rule.disruptive == "deny" and action is None:
                    action = "block"
                if rule.log:
                    matches.append(Match(rule.id, _score(t) - before, rule.msg, action or "log"))
                if action is not None and action != "log":
                    return Outcome(tuple(matches), _to_int(t.tx.get(score, b"0")), action, rule.id, t.tx)
                if rule.skip_after:
                    i = markers.get(rule.skip_after, n)
        return Outcome(tuple(matches), _to_int(t.tx.get(score, b"0")), None, None, t.tx)

    def _matches(self, rule: SecRule, t: Transaction) -> int:
        """-1 when the rule (with its chain) does not match, else the anomaly score before its actions.

        As in ModSecurity, each link's actions (``setvar``, ``ctl``) run as soon as that link matches,
        before the next link is evaluated (920420's chained rule reads the ``tx.content_type`` that its
        first link sets); they stay done when a later link does not match."""
        link: SecRule | None = rule
        before = -1
        while link is not None:
            if not self._link_matches(link, rule, t):
                return -1
            if before < 0:
                before = _score(t) if rule.log else 0
            self._actions(link, t)
            link = link.chain
        return before

    def _link_matches(self, link: SecRule, rule: SecRule, t: Transaction) -> bool:
        operator = link.operator
        if link.targets is None or operator is None:
            return True
        key = link.transform_key
        targets = link.targets
        # Most rules match nothing. Whether any value of the rule's targets could match is answered from
        # the targets' values before this rule's exclusions (a superset), transformed once per request for
        # all the rules sharing a target and a chain: for @rx by the RE2 set's hits.
        may_prefilter = targets.positive and not operator.negated and not operator.dynamic
        if may_prefilter and not prefilter.may_match(link, operator, t):
            return False
        pairs: list[Item] | None = None
        extra = self._removed_targets(rule, t) if t.removed_targets else None
        if link.tx_key and not extra:
            # One TX variable, no transformation: the paranoia-level and setting checks of every file.
            tx_value = t.tx.get(link.tx_key)
            if tx_value is None:
                return False
            pairs = [(link.tx_name, tx_value)]
        elif targets.cacheable and not extra and not link.multimatch:
            cache_key = (targets.key, key)
            pairs = t.transformed.get(cache_key)
            if pairs is None:
                raw = t.transformed.get((targets.key, ""))
                if raw is None:
                    raw = t.transformed[(targets.key, "")] = targets.items(t)
                pairs = t.transformed[cache_key] = transformed(link, raw, t)
            if isinstance(operator, Rx) and operator.set_index >= 0 and not operator.negated:
                # One membership test instead of a loop over every value: the union of the RE2-set hits
                # of all the values these targets and transformations give (computed once per request).
                union = t.group_hits.get(cache_key, UNKNOWN)
                if union is UNKNOWN:
                    union = t.group_hits[cache_key] = prefilter.union_hits(pairs, t)
                if union is not None and operator.set_index not in union:
                    return False
        else:
            items = targets.items(t, extra)
            pairs = items if link.multimatch else transformed(link, items, t)
        matched: list[Item] = []
        dynamic = operator.dynamic
        set_index = operator.set_index if isinstance(operator, Rx) else -1
        negated = operator.negated
        rx_hits = t.rx_hits

        def expand(text: str) -> str:
            return _expand(_macro(text), t, rule)

        for name, value in pairs:
            candidates = intermediates(link, value, t.steps) if link.multimatch else [value]
            for candidate in candidates:
                if set_index >= 0:
                    hits = rx_hits.get(candidate, UNKNOWN)
                    if hits is UNKNOWN:
                        hits = rx_hits[candidate] = t.rx_set.match(candidate)
                    if hits is not None and set_index not in hits:
                        if not negated:
                            continue
                        captures: tuple[bytes, ...] | None = ()
                    elif hits is not None and negated:
                        continue  # the set says the regex matches: a negated one does not
                    else:
                        captures = operator.test(candidate, _no_expand)
                else:
                    captures = operator.test(candidate, expand if dynamic else _no_expand)
                if captures is None:
                    continue
                if link.capture and captures:
                    for index, group in enumerate(captures):
                        t.tx[str(index)] = group
                t.matched_var = (name, candidate)
                matched.append((name, candidate))
                if link.setvars_per_match:
                    for setvar in link.setvars:
                        self._setvar(setvar, t, link)
                break
        if not matched:
            return False
        t.matched_vars = matched
        return True

    def _removed_targets(self, rule: SecRule, t: Transaction) -> list[tuple[str, Selector | None]]:
        out: list[tuple[str, Selector | None]] = []
        for rule_id, tag, target in t.removed_targets:
            if (rule_id is not None and rule_id == rule.id) or (tag is not None and tag in rule.tags):
                collection, sep, key = target.partition(":")
                out.append((collection.upper(), Selector(key) if sep and key else None))
        return out

    @staticmethod
    def _setvar(setvar: SetVar, t: Transaction, link: SecRule) -> None:
        name = _expand(setvar.name, t, link).lower()
        if setvar.op == "!":
            t.tx.pop(name, None)
            return
        value = _expand(setvar.value, t, link)
        if setvar.op == "=":
            t.tx[name] = value.encode("latin-1", "replace")
        else:
            current = _to_int(t.tx.get(name, b"0"))
            delta = _to_int(value.encode("latin-1", "replace"))
            t.tx[name] = str(current + delta if setvar.op == "+" else current - delta).encode()

    def _actions(self, link: SecRule, t: Transaction) -> None:
        if not link.setvars_per_match:
            for setvar in link.setvars:
                self._setvar(setvar, t, link)
        for option, argument in link.ctls:
            if option == "ruleremovebyid":
                for part in argument.split():
                    low, _, high = part.partition("-")
                    t.removed_ids.update(range(int(low), int(high or low) + 1))
            elif option == "ruleremovebytag":
                t.removed_tags.add(argument)
            elif option in ("ruleremovetargetbyid", "ruleremovetargetbytag"):
                which, _, target = argument.partition(";")
                if option == "ruleremovetargetbyid":
                    t.removed_targets.append((int(which), None, target))
                else:
                    t.removed_targets.append((None, which, target))
            elif option == "forcerequestbodyvariable":
                t.force_body_variable = argument.lower() == "on"
            elif option == "requestbodyprocessor":
                t.set_processor(argument.upper())


@functools.lru_cache(maxsize=256)
def _macro(text: str) -> Macro:
    return Macro.parse(text)


def _no_expand(text: str) -> str:
    return text
