"""Rules and rulesets: compile once per snapshot, evaluate per request, return a verdict.

Theory of operation. ``compile_ruleset`` validates every rule (expression, action allowed in the
phase, parameters) and compiles its expression; errors carry a JSON pointer
(``/rules/3/expression``) for the API's ``source.pointer``. ``evaluate_request`` then runs the
phases in Cloudflare's order (spec §2.5): custom rules, rate limiting, the managed hook. Rules run
in list order; the first terminating action ends evaluation; ``log`` and ``skip`` continue, and a
skip affects only what comes after it. Origin Rules run in their own phase through
``evaluate_origin``: every matching ``route`` rule applies, later ones winning key by key.

Nothing here performs I/O or reads a clock: the rate limiter's state and ``now`` are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from .actions import (
    PHASE_ACTIONS,
    TERMINATING,
    Action,
    BlockResponse,
    Phase,
    RouteOverride,
    parse_block_response,
    parse_route,
)
from .ast import LogicalExpr
from .compiler import CompileError, Getter, Lists, Predicate, Scan, compile_expression, compile_scan, compile_value
from .context import FieldValues
from .errors import ParseError
from .parser import parse, parse_value
from .ratelimit import RateLimiter, RateLimitSpec
from .request import RequestFields

__all__ = [
    "NO_MATCH",
    "CompiledRule",
    "CompiledRuleset",
    "ManagedHook",
    "Rule",
    "RuleError",
    "RuleMatch",
    "Verdict",
    "compile_ruleset",
    "evaluate_origin",
    "evaluate_phases",
    "evaluate_request",
]

_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})
_SKIPPABLE_PHASES = frozenset(
    {
        Phase.HTTP_RATELIMIT.value,
        Phase.HTTP_REQUEST_FIREWALL_MANAGED.value,
        Phase.HTTP_RESPONSE_FIREWALL_MANAGED.value,
        "http_request_sbfm",
    }
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as stored (the Rulesets API object, spec §2.3)."""

    id: str
    expression: str
    action: Action
    enabled: bool = True
    action_parameters: Mapping[str, Any] = field(default_factory=lambda: _NO_PARAMS)
    ratelimit: RateLimitSpec | None = None
    ref: str | None = None
    description: str = ""


class RuleError(ValueError):
    """A rule the phase refuses; ``pointer`` is a JSON pointer into the ruleset body."""

    def __init__(self, message: str, pointer: str, parse_error: ParseError | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer
        self.parse_error = parse_error


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    predicate: Predicate
    counting: Predicate | None = None
    characteristics: tuple[Getter, ...] = ()
    response: BlockResponse | None = None
    route: RouteOverride | None = None
    node: LogicalExpr | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CompiledRuleset:
    phase: Phase
    rules: tuple[CompiledRule, ...]
    id: str = ""
    scan: Scan | None = field(default=None, compare=False)
    """All rules' expressions in one generated function (``compiler.compile_scan``): the index of the
    first matching rule or -1. One call instead of one per rule; None means "loop over the rules"."""


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """A rule whose expression matched; every match is logged, terminating or not."""

    rule_id: str
    action: Action
    phase: Phase
    ref: str | None = None
    """Managed rules: the rule's ``ref`` (the CRS id, e.g. ``942100``)."""
    score: int | None = None
    """Managed rules: the anomaly score the rule added."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of the request phases.

    ``action`` is the terminating action (block or a challenge) or None to continue to the origin.
    """

    action: Action | None = None
    rule_id: str | None = None
    phase: Phase | None = None
    response: BlockResponse | None = None
    matches: tuple[RuleMatch, ...] = ()
    skipped_phases: frozenset[str] = frozenset()
    skipped_products: frozenset[str] = frozenset()
    score: int | None = None
    """The managed ruleset's inbound anomaly score, when it ran."""
    outbound_score: int | None = None
    """The managed ruleset's outbound (response) anomaly score, when its response rules ran."""

    @property
    def terminated(self) -> bool:
        return self.action is not None

    @property
    def status_code(self) -> int | None:
        """The status to answer with, when terminated: custom, else 429 for rate limits, else 403."""
        if self.action is None:
            return None
        if self.response is not None:
            return self.response.status_code
        return 429 if self.phase is Phase.HTTP_RATELIMIT else 403


ManagedHook = Callable[[FieldValues], Verdict | None]
"""The managed phase (a later issue): return a terminating verdict, or None to continue."""


def _compile_expression(text: str, pointer: str, lists: Lists | None) -> tuple[LogicalExpr, Predicate]:
    try:
        node = parse(text)
        return node, compile_expression(node, lists=lists)
    except ParseError as exc:
        raise RuleError(
            f"{text!r} is not a valid value for expression because could not parse filter expression: {exc}",
            pointer,
            exc,
        ) from None
    except CompileError as exc:
        raise RuleError(str(exc), pointer) from None


def _compile_rule(phase: Phase, index: int, rule: Rule, lists: Lists | None) -> CompiledRule:
    base = f"/rules/{index}"
    if rule.action not in PHASE_ACTIONS[phase]:
        raise RuleError(f"action {rule.action.value!r} is not allowed in phase {phase.value}", f"{base}/action")
    node, predicate = _compile_expression(rule.expression, f"{base}/expression", lists)
    params = rule.action_parameters
    try:
        response = (
            parse_block_response(params, ratelimit=phase is Phase.HTTP_RATELIMIT)
            if (rule.action is Action.BLOCK)
            else None
        )
        route = parse_route(params) if rule.action is Action.ROUTE else None
        if rule.action is Action.SKIP:
            _check_skip(params)
    except ValueError as exc:
        raise RuleError(str(exc), f"{base}/action_parameters") from None
    if phase is not Phase.HTTP_RATELIMIT:
        return CompiledRule(rule, predicate, response=response, route=route, node=node)
    spec = rule.ratelimit
    if spec is None:
        raise RuleError("rate limiting rules need a ratelimit object", f"{base}/ratelimit")
    counting = (
        _compile_expression(spec.counting_expression, f"{base}/ratelimit/counting_expression", lists)[1]
        if spec.counting_expression
        else None
    )
    getters: list[Getter] = []
    for n, characteristic in enumerate(spec.characteristics):
        if characteristic == "cf.colo.id":
            continue  # one edge node is one colo: a constant part of every key
        try:
            getters.append(compile_value(parse_value(characteristic), lists=lists))
        except ParseError as exc:
            raise RuleError(str(exc), f"{base}/ratelimit/characteristics/{n}", exc) from None
    return CompiledRule(rule, predicate, counting, tuple(getters), response, node=node)


def _check_skip(params: Mapping[str, Any]) -> None:
    if not params:
        raise ValueError("skip needs ruleset, phase, phases, products, rulesets or rules")
    if "ruleset" in params and params["ruleset"] != "current":
        raise ValueError('ruleset must be "current"')
    if "phase" in params and params["phase"] != "current":
        raise ValueError('phase must be "current"')
    if "ruleset" in params and len(params) > 1:
        raise ValueError("ruleset cannot be combined with other skip parameters")


def compile_ruleset(
    phase: Phase, rules: Sequence[Rule], *, lists: Lists | None = None, ruleset_id: str = ""
) -> CompiledRuleset:
    """Validate and compile the rules of one ruleset (disabled rules are validated too).

    Raises:
        RuleError: the first invalid rule, with a JSON pointer to the offending member.
    """
    compiled = tuple(_compile_rule(phase, i, rule, lists) for i, rule in enumerate(rules))
    enabled = tuple(c for c in compiled if c.rule.enabled)
    scan = None
    nodes = [c.node for c in enabled if c.node is not None]
    # Rate-limit rules also count requests their expression does not match: they keep the rule loop.
    if phase is not Phase.HTTP_RATELIMIT and len(nodes) == len(enabled):
        scan = compile_scan(nodes, lists=lists)
    return CompiledRuleset(phase, enabled, ruleset_id, scan)


# Enum member and `.value` lookups cost ~0.1-0.2 µs each on the per-request path: hoisted here.
_CUSTOM: Final = Phase.HTTP_REQUEST_FIREWALL_CUSTOM
_RATELIMIT: Final = Phase.HTTP_RATELIMIT
_MANAGED: Final = Phase.HTTP_REQUEST_FIREWALL_MANAGED
_RATELIMIT_NAME: Final = _RATELIMIT.value
_MANAGED_NAME: Final = _MANAGED.value
NO_MATCH: Final = Verdict()
"""The verdict of a request that matched nothing (shared: verdicts are frozen); readers on the request path
(the access log, the dashboard's recorder) tell it by identity before reading any attribute."""
_CONTINUE: Final = NO_MATCH


class _Run:
    __slots__ = ("matches", "skipped_phases", "skipped_products")

    def __init__(self) -> None:
        # Created only once a rule matches: three containers cost ~0.2 µs.
        self.matches: list[RuleMatch] = []
        self.skipped_phases: set[str] = set()
        self.skipped_products: set[str] = set()

    def verdict(self, rule: CompiledRule | None = None, phase: Phase | None = None) -> Verdict:
        if rule is None and not self.matches and not self.skipped_phases and not self.skipped_products:
            return _CONTINUE
        return Verdict(
            rule.rule.action if rule else None,
            rule.rule.id if rule else None,
            phase,
            rule.response if rule else None,
            tuple(self.matches),
            frozenset(self.skipped_phases),
            frozenset(self.skipped_products),
        )


def _custom(rulesets: Sequence[CompiledRuleset], values: FieldValues) -> tuple[CompiledRule | None, _Run | None]:
    """The terminating rule, if any, and the run (None while nothing matched: the common path)."""
    run: _Run | None = None
    for ruleset in rulesets:
        # The generated scan finds the first matching rule in one call; rules before it do not match
        # (predicates are pure functions of the cached field values), so the loop starts there.
        first = 0 if ruleset.scan is None else ruleset.scan(values)
        if first < 0:
            continue
        for rule in ruleset.rules[first:] if first else ruleset.rules:
            if not rule.predicate(values):
                continue
            action = rule.rule.action
            run = run or _Run()
            run.matches.append(RuleMatch(rule.rule.id, action, _CUSTOM))
            if action in TERMINATING:
                return rule, run
            if action is Action.SKIP:
                params = rule.rule.action_parameters
                run.skipped_phases.update(params.get("phases", ()))
                run.skipped_products.update(params.get("products", ()))
                if params.get("phase") == "current":
                    return None, run
                if params.get("ruleset") == "current":
                    break
    return None, run


def _ratelimit(
    rulesets: Sequence[CompiledRuleset], values: FieldValues, run: _Run, limiter: RateLimiter, now: float
) -> CompiledRule | None:
    phase = Phase.HTTP_RATELIMIT
    for ruleset in rulesets:
        for rule in ruleset.rules:
            matched = rule.predicate(values)
            counted = rule.counting(values) if rule.counting is not None else matched
            if not (matched or counted):
                continue
            spec = rule.rule.ratelimit
            assert spec is not None
            key: Hashable = tuple(_hashable(get(values)) for get in rule.characteristics)
            over = limiter.hit(rule.rule.id, key, spec, now, count=counted)
            if not (matched and over):
                continue
            run.matches.append(RuleMatch(rule.rule.id, rule.rule.action, phase))
            if rule.rule.action in TERMINATING:
                return rule
    return None


def _hashable(value: Any) -> Hashable:
    # Missing (None) and empty (b"") stay distinct keys, as Cloudflare counts them separately.
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value  # type: ignore[no-any-return]


def evaluate_request(
    request: RequestFields | FieldValues,
    phases: Mapping[Phase, Sequence[CompiledRuleset]],
    *,
    limiter: RateLimiter | None = None,
    now: float = 0.0,
    managed: ManagedHook | None = None,
) -> Verdict:
    """Run custom rules, rate limiting and the managed hook, in Cloudflare's order (spec §2.5; Origin Rules,
    ``evaluate_origin``, run before all three). This function is where that order lives.

    Args:
        request: the request, or ``FieldValues`` already built for it (to share the field cache
            with ``evaluate_origin``).
        phases: per phase, its rulesets in evaluation order (account entry point first).
        limiter: rate-limit state of this edge node; the rate-limit phase is skipped without one.
        now: seconds on the limiter's clock.
        managed: the managed-phase hook.
    """
    values = request if isinstance(request, FieldValues) else FieldValues(request)
    return evaluate_phases(values, phases.get(_CUSTOM, ()), phases.get(_RATELIMIT, ()), limiter, now, managed)


def evaluate_phases(
    values: FieldValues,
    custom: Sequence[CompiledRuleset],
    ratelimit: Sequence[CompiledRuleset],
    limiter: RateLimiter | None,
    now: float,
    managed: ManagedHook | None,
) -> Verdict:
    """:func:`evaluate_request` with the custom and rate-limit rulesets already looked up (the edge keeps
    them per zone and snapshot: each lookup by ``Phase`` hashes the enum in Python)."""
    hit, run = _custom(custom, values)
    if hit is not None:
        assert run is not None
        return run.verdict(hit, _CUSTOM)
    if ratelimit and limiter is not None and (run is None or _RATELIMIT_NAME not in run.skipped_phases):
        run = run or _Run()
        hit = _ratelimit(ratelimit, values, run, limiter, now)
        if hit is not None:
            return run.verdict(hit, _RATELIMIT)
    if managed is not None and (run is None or _MANAGED_NAME not in run.skipped_phases):
        run = run or _Run()
        verdict = managed(values)
        if verdict is not None and verdict.terminated:
            return Verdict(
                verdict.action,
                verdict.rule_id,
                _MANAGED,
                verdict.response,
                tuple(run.matches) + verdict.matches,
                frozenset(run.skipped_phases),
                frozenset(run.skipped_products),
            )
    return _CONTINUE if run is None else run.verdict()


def evaluate_origin(
    request: RequestFields | FieldValues, rulesets: Sequence[CompiledRuleset]
) -> tuple[RouteOverride | None, tuple[str, ...]]:
    """Origin Rules: the merged route of every matching rule, and the ids that matched."""
    values = request if isinstance(request, FieldValues) else FieldValues(request)
    route: RouteOverride | None = None
    matched: list[str] = []
    for ruleset in rulesets:
        first = 0 if ruleset.scan is None else ruleset.scan(values)
        if first < 0:
            continue
        for rule in ruleset.rules[first:] if first else ruleset.rules:
            if rule.route is not None and rule.predicate(values):
                route = rule.route if route is None else route.merged(rule.route)
                matched.append(rule.rule.id)
    return route, tuple(matched)
