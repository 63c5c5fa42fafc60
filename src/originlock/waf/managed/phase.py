"""The ``http_request_firewall_managed`` phase: a zone's execute / skip / log rules, then the CRS.

Theory of operation. The zone's entry point for the phase is a compiled ruleset of ``execute``,
``skip`` and ``log`` rules (validated by :func:`check_managed_rule`). :func:`plan_managed` walks it at
the request headers: a matching ``skip`` with ``ruleset: "current"`` ends the phase, with
``rulesets`` it removes those managed rulesets, with ``rules`` it removes single managed rules from
the execution that follows; the first matching ``execute`` of the OWASP ruleset gives the
:class:`ManagedPlan` (the engine settings from its overrides). :func:`run_managed` then evaluates
the CRS for the request (with the body prefix when there is one) and returns the verdict: every CRS
match with its ``ref`` and score, and the terminating action when the anomaly score reached the
threshold (or a rule overridden to a terminating action matched). Pure: the edge supplies the body.

The ``http_response_firewall_managed`` entry point works the same way (its rules are planned at the
request headers, with the request's fields: the Rules language has no response fields here); its
execute runs the CRS's response phases (3 and 4) through :func:`run_response` on the request's
transaction (:func:`run_managed_keeping` keeps it), or, when the zone deploys the response rules alone,
on a transaction that ran only the CRS's initialization.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from originlock.waf.actions import Action, Phase
from originlock.waf.context import FieldValues
from originlock.waf.rules import CompiledRuleset, RuleMatch, Verdict

from .cloudflare import OWASP_RULESET_ID, OverrideError, engine_config, rule_id_for
from .engine import Engine, EngineConfig, Outcome
from .loader import load_engine
from .transaction import HttpRequest, HttpResponse, Transaction

__all__ = [
    "ManagedPlan",
    "check_managed_rule",
    "plan_managed",
    "request_of",
    "run_managed",
    "run_managed_keeping",
    "run_response",
]

_PHASE = Phase.HTTP_REQUEST_FIREWALL_MANAGED
_RESPONSE = Phase.HTTP_RESPONSE_FIREWALL_MANAGED
_ACTIONS = {a.value: a for a in Action}


@dataclass(frozen=True, slots=True)
class ManagedPlan:
    config: EngineConfig
    execute_rule_id: str
    matches: tuple[RuleMatch, ...] = ()
    """Rules of the entry point that matched before the execute (skip, log, the execute itself)."""


def check_managed_rule(action: Action, params: Mapping[str, Any]) -> None:
    """Validate an entry-point rule of the managed phase.

    Raises:
        OverrideError: with a pointer relative to ``action_parameters``.
    """
    if action is Action.EXECUTE:
        if params.get("id") != OWASP_RULESET_ID:
            raise OverrideError(
                f"managed ruleset {params.get('id')!r} does not exist; available: {OWASP_RULESET_ID} "
                "(Cloudflare OWASP Core Ruleset)",
                "/id",
            )
        engine_config(params)
    elif action is Action.SKIP:
        rulesets = params.get("rulesets")
        if rulesets is not None and (not isinstance(rulesets, list) or not all(isinstance(r, str) for r in rulesets)):
            raise OverrideError("rulesets must be a list of ruleset ids", "/rulesets")
        rules = params.get("rules")
        if rules is not None and (
            not isinstance(rules, dict)
            or not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in rules.values())
        ):
            raise OverrideError("rules must map ruleset ids to lists of rule ids", "/rules")


def plan_managed(
    values: FieldValues, rulesets: Sequence[CompiledRuleset], phase: Phase = _PHASE
) -> tuple[ManagedPlan | None, tuple[RuleMatch, ...]]:
    """The CRS execution this request gets (None when no execute rule applies) and the rules that matched.

    ``phase``: the entry point's phase (request or response), recorded on the matches."""
    matches: list[RuleMatch] = []
    skipped_rulesets: set[str] = set()
    skipped_rules: set[str] = set()
    for ruleset in rulesets:
        for compiled in ruleset.rules:
            rule = compiled.rule
            if not compiled.predicate(values):
                continue
            params = rule.action_parameters
            if rule.action is Action.SKIP:
                matches.append(RuleMatch(rule.id, rule.action, phase))
                if params.get("ruleset") == "current":
                    return None, tuple(matches)
                skipped_rulesets.update(params.get("rulesets") or ())
                for ids in (params.get("rules") or {}).values():
                    skipped_rules.update(ids)
            elif rule.action is Action.LOG:
                matches.append(RuleMatch(rule.id, rule.action, phase))
            elif rule.action is Action.EXECUTE:
                if params.get("id") != OWASP_RULESET_ID or OWASP_RULESET_ID in skipped_rulesets:
                    continue
                config = engine_config(params, skipped_rules=frozenset(skipped_rules))
                return ManagedPlan(config, rule.id, tuple(matches)), tuple(matches)
    return None, tuple(matches)


def request_of(values: FieldValues, body: bytes | None = None) -> HttpRequest:
    """The CRS's view of the request the Rules language sees (plus the body prefix read since)."""
    fields = values.request
    target = fields.path + ("?" + fields.query if fields.query else "")
    return HttpRequest(
        method=fields.method.encode("latin-1"),
        target=target.encode("latin-1"),
        protocol=fields.http_version.encode("latin-1"),
        headers=fields.headers,
        remote_addr=fields.ip,
        body=body if body is not None else fields.body,
    )


def run_managed(plan: ManagedPlan, request: HttpRequest, engine: Engine | None = None) -> Verdict:
    """Evaluate the CRS; the verdict carries every match, the score and any terminating action."""
    return run_managed_keeping(plan, request, engine)[0]


def run_managed_keeping(
    plan: ManagedPlan, request: HttpRequest, engine: Engine | None = None
) -> tuple[Verdict, Transaction]:
    """:func:`run_managed`, and the transaction the response phases continue (its TX)."""
    engine = engine or load_engine()
    t = engine.transaction(request, plan.config)
    outcome = engine.run(t, plan.config, (1, 2))
    return _verdict(plan, outcome, _PHASE), t


def run_response(
    plan: ManagedPlan,
    response: HttpResponse,
    request: HttpRequest,
    transaction: Transaction | None,
    engine: Engine | None = None,
) -> Verdict:
    """The CRS's response phases for ``response``, on the request's ``transaction`` (None when the request
    phases did not run the CRS: a transaction with the CRS's initialization alone is made for
    ``request``). The verdict's ``outbound_score`` is the response's anomaly score."""
    engine = engine or load_engine()
    t = transaction
    if t is None:
        t = engine.transaction(request, plan.config)
        engine.initialize(t, plan.config)
    outcome = engine.respond(t, response, plan.config)
    verdict = _verdict(plan, outcome, _RESPONSE)
    return replace(verdict, score=None, outbound_score=outcome.score)


def _verdict(plan: ManagedPlan, outcome: Outcome, phase: Phase) -> Verdict:
    matches = list(plan.matches)
    for match in outcome.matches:
        action = _ACTIONS.get(match.action, Action.LOG)
        matches.append(RuleMatch(rule_id_for(match.rule_id), action, phase, str(match.rule_id), match.score))
    terminated = outcome.action is not None and outcome.action != "log"
    return Verdict(
        _ACTIONS.get(outcome.action or "", Action.BLOCK) if terminated else None,
        rule_id_for(outcome.rule_id) if terminated and outcome.rule_id is not None else None,
        phase if terminated else None,
        None,
        tuple(matches),
        score=outcome.score,
    )
