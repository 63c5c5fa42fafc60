"""The WAF: Cloudflare's Rules language and ruleset engine, pure and sans-IO.

Pipeline (wirefilter's ``Scheme -> parse -> compile -> execute``)::

    text --parse()--> typed AST --compile_expression()--> predicate(FieldValues) -> bool
    RequestFields --FieldValues()--> lazily computed field values, shared by all rules

    Rules --compile_ruleset(phase)--> CompiledRuleset
    evaluate_origin(request, rulesets)            -> RouteOverride (Origin Rules)
    evaluate_request(request, phases, limiter, now) -> Verdict (custom -> rate limit -> managed)

Nothing in this package reads a clock, opens a socket or imports asyncio: the edge passes the
request, the rate-limit state and the time in.
"""

from .actions import Action, BlockResponse, Phase, RouteOverride
from .ast import LogicalExpr
from .compiler import CompileError, Predicate, compile_expression
from .context import FieldValues
from .errors import ParseError
from .parser import MAX_EXPRESSION_LENGTH, MAX_NESTING_DEPTH, parse, parse_value
from .printer import to_source
from .ratelimit import RateLimiter, RateLimitSpec
from .request import RequestFields
from .rules import (
    NO_MATCH,
    CompiledRuleset,
    Rule,
    RuleError,
    RuleMatch,
    Verdict,
    compile_ruleset,
    evaluate_origin,
    evaluate_request,
)

__all__ = [
    "MAX_EXPRESSION_LENGTH",
    "MAX_NESTING_DEPTH",
    "NO_MATCH",
    "Action",
    "BlockResponse",
    "CompileError",
    "CompiledRuleset",
    "FieldValues",
    "LogicalExpr",
    "ParseError",
    "Phase",
    "Predicate",
    "RateLimitSpec",
    "RateLimiter",
    "RequestFields",
    "RouteOverride",
    "Rule",
    "RuleError",
    "RuleMatch",
    "Verdict",
    "compile_expression",
    "compile_ruleset",
    "evaluate_origin",
    "evaluate_request",
    "parse",
    "parse_value",
    "to_source",
]
