"""Rules of the Rulesets API: validate API JSON, normalise it to the stored form, compile it with the WAF.

A rule is stored as the JSON object the API returns (spec §2.3): ``id``, ``ref``, ``version``, ``action``,
``expression``, ``description``, ``enabled``, ``last_updated`` and, when set, ``action_parameters``,
``ratelimit`` and ``logging``. Every write compiles the whole new rule list with the WAF engine
(:func:`originlock.waf.compile_ruleset`) before anything is stored, so the edge never receives a rule
it cannot run and a bad rule leaves the ruleset untouched (all-or-nothing).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from originlock.store.errors import Invalid
from originlock.waf import Action, CompiledRuleset, Phase, RateLimitSpec, Rule, RuleError, compile_ruleset

__all__ = [
    "INVALID_RULE",
    "SOURCE_PREFIX",
    "SUPPORTED_PHASES",
    "RulesetInvalid",
    "check_rules",
    "compile_entrypoints",
    "compile_sources",
    "normalize_rule",
    "parse_phase",
    "to_waf_rules",
]

log = logging.getLogger("originlock.rulesets")

#: Cloudflare answers rule validation errors with 20125 ("'' is not a valid value for expression because
#: the expression cannot be blank"); we use it for every invalid rule or ruleset body.
INVALID_RULE: Final = 20125

#: Phases this edge evaluates; the others are refused rather than stored and silently ignored.
SUPPORTED_PHASES: Final = (
    Phase.HTTP_REQUEST_FIREWALL_CUSTOM,
    Phase.HTTP_RATELIMIT,
    Phase.HTTP_REQUEST_ORIGIN,
    Phase.HTTP_REQUEST_FIREWALL_MANAGED,
    Phase.HTTP_RESPONSE_FIREWALL_MANAGED,
)
#: Entry points whose execute rules run a managed ruleset (their parameters are checked by waf/managed).
_MANAGED_PHASES: Final = frozenset({Phase.HTTP_REQUEST_FIREWALL_MANAGED, Phase.HTTP_RESPONSE_FIREWALL_MANAGED})

_ACTIONS: Final = frozenset(a.value for a in Action)
_RULE_KEYS: Final = ("action_parameters", "ratelimit", "logging")


class RulesetInvalid(Invalid):
    """A 400 whose error carries ``source.pointer`` (a JSON pointer into the request body)."""

    def __init__(self, message: str, pointer: str, code: int = INVALID_RULE) -> None:
        super().__init__(message, code)
        self.pointer = pointer


def parse_phase(value: object, pointer: str = "/phase") -> Phase:
    """The phase named ``value``, if this edge runs it.

    Raises:
        RulesetInvalid: unknown or unsupported phase, with the supported list in the message.
    """
    supported = ", ".join(p.value for p in SUPPORTED_PHASES)
    if not isinstance(value, str) or value not in {p.value for p in SUPPORTED_PHASES}:
        raise RulesetInvalid(f"phase {value!r} is not supported by originlock; supported phases: {supported}", pointer)
    return Phase(value)


def _string(rule: Mapping[str, Any], key: str, base: str, default: str | None = None) -> str | None:
    value = rule.get(key, default)
    if value is not None and not isinstance(value, str):
        raise RulesetInvalid(f"{key} must be a string", f"{base}/{key}")
    return value


def _object(rule: Mapping[str, Any], key: str, base: str) -> dict[str, Any] | None:
    value = rule.get(key)
    if value is not None and not isinstance(value, dict):
        raise RulesetInvalid(f"{key} must be an object", f"{base}/{key}")
    return value


def normalize_rule(rule: object, base: str, phase: Phase) -> dict[str, Any]:
    """Check the user-settable members of one rule and return them with defaults filled in.

    ``id``, ``version`` and ``last_updated`` are assigned by the caller. Unknown members are dropped.

    Raises:
        RulesetInvalid: the first bad member, with a pointer under ``base`` (e.g. ``/rules/2``).
    """
    if not isinstance(rule, dict):
        raise RulesetInvalid("a rule must be an object", base or "/")
    action = _string(rule, "action", base)
    if action is None:
        raise RulesetInvalid("action is required", f"{base}/action")
    if action not in _ACTIONS:
        raise RulesetInvalid(f"{action!r} is not a valid value for action", f"{base}/action")
    expression = _string(rule, "expression", base, "")
    if not expression or not expression.strip():
        raise RulesetInvalid(
            f"{expression!r} is not a valid value for expression because the expression cannot be blank",
            f"{base}/expression",
        )
    enabled = rule.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RulesetInvalid("enabled must be true or false", f"{base}/enabled")
    out: dict[str, Any] = {
        "action": action,
        "expression": expression,
        "description": _string(rule, "description", base, "") or "",
        "enabled": enabled,
    }
    ref = _string(rule, "ref", base)
    if ref is not None:
        out["ref"] = ref
    for key in _RULE_KEYS:
        value = _object(rule, key, base)
        if value is not None:
            out[key] = value
    if phase is Phase.HTTP_RATELIMIT and "ratelimit" not in out:
        raise RulesetInvalid("rate limiting rules need a ratelimit object", f"{base}/ratelimit")
    if phase is not Phase.HTTP_RATELIMIT and "ratelimit" in out:
        raise RulesetInvalid(f"ratelimit is only allowed in the {Phase.HTTP_RATELIMIT} phase", f"{base}/ratelimit")
    if "ratelimit" in out:
        out["ratelimit"] = _ratelimit(out["ratelimit"], f"{base}/ratelimit")
    return out


def _ratelimit(value: dict[str, Any], base: str) -> dict[str, Any]:
    if "score_per_period" in value:
        raise RulesetInvalid(
            "complexity-based rate limiting (score_per_period) is not supported", f"{base}/score_per_period"
        )
    chars = value.get("characteristics")
    if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
        raise RulesetInvalid("characteristics must be a list of strings", f"{base}/characteristics")
    out: dict[str, Any] = {"characteristics": list(chars)}
    for key, default in (("period", None), ("requests_per_period", None), ("mitigation_timeout", 0)):
        number = value.get(key, default)
        if not isinstance(number, int) or isinstance(number, bool):
            raise RulesetInvalid(f"{key} must be an integer", f"{base}/{key}")
        out[key] = number
    counting = value.get("counting_expression", "")
    if not isinstance(counting, str):
        raise RulesetInvalid("counting_expression must be a string", f"{base}/counting_expression")
    to_origin = value.get("requests_to_origin", False)
    if not isinstance(to_origin, bool):
        raise RulesetInvalid("requests_to_origin must be true or false", f"{base}/requests_to_origin")
    out["counting_expression"] = counting
    out["requests_to_origin"] = to_origin
    try:
        _spec(out)
    except ValueError as exc:
        raise RulesetInvalid(str(exc), base) from None
    return out


def _spec(value: Mapping[str, Any]) -> RateLimitSpec:
    return RateLimitSpec(
        characteristics=tuple(value["characteristics"]),
        period=value["period"],
        requests_per_period=value["requests_per_period"],
        mitigation_timeout=value["mitigation_timeout"],
        counting_expression=value["counting_expression"],
        requests_to_origin=value["requests_to_origin"],
    )


def to_waf_rules(rules: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """Stored (already normalised) rules as the WAF engine's :class:`~originlock.waf.Rule` values."""
    return [
        Rule(
            id=r["id"],
            expression=r["expression"],
            action=Action(r["action"]),
            enabled=r["enabled"],
            action_parameters=r.get("action_parameters") or {},
            ratelimit=_spec(r["ratelimit"]) if "ratelimit" in r else None,
            ref=r.get("ref"),
            description=r.get("description", ""),
        )
        for r in rules
    ]


def check_rules(phase: Phase, rules: Sequence[Mapping[str, Any]], *, body_index: int | None = None) -> None:
    """Compile ``rules`` as the edge will; refuse the write on the first error.

    Args:
        body_index: when the request body is one rule (add or edit a rule), errors in that rule are
            reported relative to the body (``/expression``) instead of ``/rules/N/expression``.

    Raises:
        RulesetInvalid: the WAF's message (Cloudflare's wording for expressions) and pointer.
    """
    try:
        waf_rules = to_waf_rules(rules)
        compile_ruleset(phase, waf_rules)
        if phase in _MANAGED_PHASES:
            _check_managed(waf_rules)
    except RuleError as exc:
        pointer = exc.pointer
        if body_index is not None:
            index, _, rest = pointer.removeprefix("/rules/").partition("/")
            if index == str(body_index):
                pointer = f"/{rest}" if rest else "/"
        raise RulesetInvalid(exc.message, pointer) from None


def _check_managed(rules: Sequence[Rule]) -> None:
    """Execute rules must name a managed ruleset we have, with overrides it accepts (``waf/managed``)."""
    from originlock.waf.managed.cloudflare import OverrideError
    from originlock.waf.managed.phase import check_managed_rule

    for index, rule in enumerate(rules):
        try:
            check_managed_rule(rule.action, rule.action_parameters)
        except OverrideError as exc:
            raise RuleError(str(exc), f"/rules/{index}/action_parameters{exc.pointer}") from None


def compile_entrypoints(rows: Iterable[Any]) -> dict[str, dict[Phase, tuple[CompiledRuleset, ...]]]:
    """Compile stored ``rulesets`` rows (each with ``zone_id``, ``id``, ``phase``, ``rules``) for the snapshot.

    Rules were validated on write, but an engine upgrade may refuse an old one: that rule alone is left
    out (and logged) so the rest of the zone's rules keep protecting it, rather than dropping the ruleset.
    """
    out: dict[str, dict[Phase, tuple[CompiledRuleset, ...]]] = {}
    for row in rows:
        if row.phase not in {p.value for p in SUPPORTED_PHASES}:
            continue
        phase = Phase(row.phase)
        rules = to_waf_rules(json.loads(row.rules))
        while True:
            try:
                compiled = compile_ruleset(phase, rules, ruleset_id=row.id)
                if phase in _MANAGED_PHASES:
                    _check_managed(rules)
                break
            except RuleError as exc:
                index = int(exc.pointer.split("/")[2])
                log.warning("ruleset %s: rule %s left out: %s", row.id, rules[index].id, exc.message)
                rules = rules[:index] + rules[index + 1 :]
        if compiled.rules:
            out.setdefault(row.zone_id, {})[phase] = (compiled,)
    return out


#: Account-level rulesets in a zone's WAF sources (``store/account_rulesets.py``'s ``zone_sources``) carry
#: this before their id. Here rather than there: the last-known-good copy compiles them again at load, and a
#: node serving its copy does so before it imports the store layer (server/disk_start.py).
SOURCE_PREFIX = "account:"


def compile_sources(sources: Iterable[tuple[str, str, str]]) -> dict[Phase, tuple[CompiledRuleset, ...]]:
    """One zone's account-level sources (``zone_sources``), compiled per phase in order."""
    out: dict[Phase, list[CompiledRuleset]] = {}
    for source_id, phase_name, rules in sources:
        ruleset_id = source_id.removeprefix(SOURCE_PREFIX)
        try:
            compiled = compile_ruleset(Phase(phase_name), to_waf_rules(json.loads(rules)), ruleset_id=ruleset_id)
        except RuleError as exc:  # an engine upgrade refusing an old rule: leave that ruleset out, loudly
            log.warning("account ruleset %s left out: %s", ruleset_id, exc.message)
            continue
        out.setdefault(Phase(phase_name), []).append(compiled)
    return {phase: tuple(compiled) for phase, compiled in out.items()}
