"""Phase WAF: the zone's rulesets, evaluated before any origin connection is opened (docs/waf.md).

Theory of operation. The snapshot carries each zone's compiled entry-point rulesets per phase
(``Snapshot.waf``). For a request to a zone with rules, :class:`EdgeWaf` builds one
:class:`~originlock.waf.RequestFields` from the parsed head and the context, then runs, in Cloudflare's
order (spec §2.5): ``http_request_origin`` (Origin Rules: the merged ``route`` override is stored on the
context and applied by ORIGIN_SELECT), ``http_request_firewall_custom``, ``http_ratelimit`` and
``http_request_firewall_managed`` (the OWASP CRS, ``waf/managed``, compiled once per process and shared by
every zone). Field values are built only when a phase reads them: Origin Rules that read nothing but
``http.host`` are remembered per host and snapshot (``origin_rules_memo.py``), and a zone without custom,
rate-limit or managed rules never calls ``evaluate_request``. A terminating verdict becomes the rule's
custom response or a 1020/1015 page; the verdict and matching rule ids are kept on the context for the
access log.

Managed rules inspect the body's first ``body_limit`` bytes (128 KB, as Cloudflare's WAF): for a request
with a body the hook decides nothing about the managed phase at the headers; it leaves a
:class:`_ManagedBody` on ``ctx.body_inspection`` and the exchange calls it with the body prefix before
connecting to the origin (the prefix is then forwarded and the rest streamed, never buffered whole).

Response rules (``http_response_firewall_managed``, the CRS's RESPONSE-95x) are planned here too: a zone
whose response entry point executes the OWASP ruleset gets a
:class:`~originlock.pipeline.builtin.waf_response.ManagedResponse` on ``ctx.response_inspection``, which
the exchange calls at the origin's response head (holding the body's start for text-like types). Zones
without response rules leave it None, and their responses take the path they always took.

Rate-limit counters live in one :class:`~originlock.waf.RateLimiter` per hook instance, i.e. per edge
process (one process is one Cloudflare "colo"; ``--workers N`` counts per process). The clocks are
injected: pure code reads no time, and tests drive rate limiting without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from originlock.pipeline.builtin.origin_rules_memo import OriginRulesMemo
from originlock.pipeline.builtin.waf_fields import FieldFiller, FieldPlan, field_values
from originlock.pipeline.builtin.waf_pages import block_response
from originlock.pipeline.builtin.waf_response import (
    DEFAULT_RESPONSE_BODY_LIMIT,
    DEFAULT_RESPONSE_TYPES,
    ManagedResponse,
)
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import CONTINUE, Decision
from originlock.proto.events import RequestReceived
from originlock.proto.target import path_and_query
from originlock.snapshot.model import Snapshot, ZonePhases
from originlock.waf import (
    NO_MATCH,
    CompiledRuleset,
    FieldValues,
    Phase,
    RateLimiter,
    RequestFields,
    Verdict,
    evaluate_origin,
)
from originlock.waf.ast import field_names
from originlock.waf.compiler import Scan
from originlock.waf.managed.phase import ManagedPlan, plan_managed, request_of, run_managed_keeping
from originlock.waf.parser import parse, parse_value
from originlock.waf.rules import ManagedHook, evaluate_phases

__all__ = ["EdgeWaf", "request_fields"]

_VERSIONS: Final = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0"}
_ORIGIN: Final = Phase.HTTP_REQUEST_ORIGIN
_CUSTOM: Final = Phase.HTTP_REQUEST_FIREWALL_CUSTOM
_RATELIMIT: Final = Phase.HTTP_RATELIMIT
_MANAGED: Final = Phase.HTTP_REQUEST_FIREWALL_MANAGED
_MANAGED_NAME: Final = _MANAGED.value
_RESPONSE: Final = Phase.HTTP_RESPONSE_FIREWALL_MANAGED
_RESPONSE_NAME: Final = _RESPONSE.value
#: Cloudflare's WAF inspects the first 128 KB of a request body (docs/waf.md).
DEFAULT_BODY_LIMIT: Final = 128 * 1024


def request_fields(request: RequestReceived, ctx: RequestContext, wall_time: float) -> RequestFields:
    """What the Rules language sees of ``request`` (``wall_time``: seconds since the epoch)."""
    path, query = path_and_query(request.target)  # the target is normalised by the parser already
    extra: dict[str, object] = {"cf.ray_id": ctx.ray_id.encode()}
    if ctx.tls_version:
        extra["cf.tls_version"] = ctx.tls_version.encode()
    if ctx.route is not None:
        # What account-level rulesets select zones by (store/account_rulesets.py).
        extra["cf.zone.name"] = ctx.route.zone_name.encode()
    # RequestFields is a frozen dataclass: its generated __init__ is interpreted and sets each field through
    # object.__setattr__ (≈ 24k instructions per request from here, docs/performance.md). The same is done
    # directly, every field (tests/pipeline/test_pipeline_waf.py checks none is missed).
    fields: RequestFields = _new(RequestFields)
    _set(fields, "method", request.method.decode("latin-1"))
    _set(fields, "host", ctx.host)
    _set(fields, "path", path.decode("latin-1"))
    _set(fields, "query", query.decode("latin-1"))
    _set(fields, "headers", tuple(request.headers))
    _set(fields, "ip", ctx.client_ip)
    _set(fields, "scheme", ctx.scheme)
    _set(fields, "ssl", ctx.scheme == "https")
    _set(fields, "http_version", _VERSIONS.get(request.version, "HTTP/1.1"))
    _set(fields, "body", None)
    _set(fields, "body_size", None)
    _set(fields, "timestamp", wall_time)
    _set(fields, "extra", extra)
    return fields


#: What request_fields fills, in RequestFields' own order (a test compares it with the dataclass's fields).
FILLED_FIELDS: Final = (
    "method",
    "host",
    "path",
    "query",
    "headers",
    "ip",
    "scheme",
    "ssl",
    "http_version",
    "body",
    "body_size",
    "timestamp",
    "extra",
)
_new: Final = object.__new__
_set: Final = object.__setattr__


class _ZoneLookup:
    """A zone's WAF phases in one snapshot, as :meth:`EdgeWaf.__call__` reads them (snapshots are
    immutable, so the lookups hold for as long as the snapshot and the zone id are the same objects)."""

    __slots__ = (
        "custom",
        "managed",
        "origin",
        "origin_alone",
        "phases",
        "plan",
        "ratelimit",
        "request_plan",
        "response",
        "scans",
        "snapshot",
        "zone_id",
    )

    def __init__(self, snapshot: Snapshot | None, zone_id: str) -> None:
        self.snapshot = snapshot
        self.zone_id = zone_id
        phases = snapshot.waf.get(zone_id) if snapshot is not None else None
        self.phases: ZonePhases | None = phases
        self.origin: tuple[CompiledRuleset, ...] | None = phases.get(_ORIGIN) if phases else None
        # Each phase's rulesets, read once per snapshot: each lookup in the read-only mapping costs a method
        # call and the Phase enum's interpreted __hash__ (≈ 500 instructions), four or six per request.
        self.custom: tuple[CompiledRuleset, ...] = (phases.get(_CUSTOM) if phases else None) or ()
        self.ratelimit: tuple[CompiledRuleset, ...] = (phases.get(_RATELIMIT) if phases else None) or ()
        self.response: tuple[CompiledRuleset, ...] = (phases.get(_RESPONSE) if phases else None) or ()
        self.managed: tuple[CompiledRuleset, ...] = (phases.get(_MANAGED) if phases else None) or ()
        #: Origin Rules are the zone's only phase (the common ruleset).
        self.origin_alone = phases is not None and len(phases) == 1 and bool(self.origin)
        #: Custom rules are the zone's only request phase besides Origin Rules, and every ruleset has its
        #: generated scan: the hook runs the scans itself (None: evaluate_request runs the phases).
        self.scans: tuple[Scan, ...] | None = None
        #: The fields the custom rules read, filled from the request head (waf_fields.py).
        self.plan: FieldPlan | None = None
        #: The fields the custom and rate-limit rules read (expressions, counting expressions and
        #: characteristics), when those two are the zone's only request phases besides Origin Rules:
        #: evaluate_request runs over them filled from the request head (None: over the whole request).
        self.request_plan = _request_plan(phases) if phases and self.ratelimit else None
        custom = self.custom
        if phases is None or not custom or any(phase is not _ORIGIN and phase is not _CUSTOM for phase in phases):
            return
        scans: list[Scan] = []
        names: set[str] = set()
        for ruleset in custom:
            if ruleset.scan is None:
                return
            scans.append(ruleset.scan)
            for rule in ruleset.rules:
                names.update(field_names(rule.node))
        self.scans = tuple(scans)
        self.plan = FieldPlan(names)


#: No zone looked up yet.
_NO_ZONE: Final = _ZoneLookup(None, "")


def _request_plan(phases: ZonePhases) -> FieldPlan | None:
    """What the custom and rate-limit rules of ``phases`` read, or None when another request phase is there
    (the managed rules read the whole request) or a rule's expression is not kept."""
    names: set[str] = set()
    for phase, rulesets in phases.items():
        if phase is _ORIGIN:
            continue  # Origin Rules make their own values when they read more than the host
        if phase is not _CUSTOM and phase is not _RATELIMIT:
            return None
        for ruleset in rulesets:
            for rule in ruleset.rules:
                if rule.node is None:
                    return None
                names.update(field_names(rule.node))
                spec = rule.rule.ratelimit
                if phase is _RATELIMIT and spec is not None:
                    # What the limiter reads besides the expression: the rule was compiled from these texts.
                    if spec.counting_expression:
                        names.update(field_names(parse(spec.counting_expression)))
                    for characteristic in spec.characteristics:
                        if characteristic != "cf.colo.id":
                            names.update(field_names(parse_value(characteristic)))
    return FieldPlan(names)


class EdgeWaf:
    """The :class:`~originlock.pipeline.hooks.WafHook` of ``originlock serve``.

    Picklable (``--workers`` sends it to each worker process, which then counts on its own copy), as
    long as the clocks are module-level functions such as ``time.monotonic``.

    Args:
        clock: monotonic seconds for rate limiting.
        wall_clock: seconds since the epoch, for ``http.request.timestamp.*``.
        managed: an extra managed-phase hook (tests); the zone's ``http_request_firewall_managed``
            entry point runs either way.
        body_limit: how many body bytes managed rules inspect.
        response_body_limit: how many bytes of a text-like response body the response rules inspect
            (the rest streams on uninspected; 0: response rules see the head alone).
        response_types: the media types whose bodies the response rules inspect.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        managed: ManagedHook | None = None,
        body_limit: int = DEFAULT_BODY_LIMIT,
        response_body_limit: int = DEFAULT_RESPONSE_BODY_LIMIT,
        response_types: frozenset[bytes] = DEFAULT_RESPONSE_TYPES,
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.managed = managed
        self.body_limit = body_limit
        self.response_body_limit = response_body_limit
        self.response_types = response_types
        self.limiter = RateLimiter()
        #: Origin Rules' outcomes per host for zones whose rules read only the host (per snapshot).
        self.origin_memo = OriginRulesMemo()
        #: The last zone's phases looked up (not pickled: each process starts with none).
        self._last_zone = _NO_ZONE
        #: Every zone looked up in the current snapshot: interleaved zones must not rebuild their lookup (the
        #: custom rules' field plan walks every rule) at each request.
        self._zones: dict[str, _ZoneLookup] = {}
        self._zones_of: Snapshot | None = None
        self._fields = FieldFiller()

    def __repr__(self) -> str:
        return f"EdgeWaf(rate_limit_keys={len(self.limiter)})"

    def __reduce__(
        self,
    ) -> tuple[
        type[EdgeWaf],
        tuple[Callable[[], float], Callable[[], float], ManagedHook | None, int, int, frozenset[bytes]],
    ]:
        # --workers pickles the hook into each process. Compiled by mypyc, the class has no default
        # reduction; each process starts with its own empty rate limiter either way (one colo each).
        args = (self.clock, self.wall_clock, self.managed, self.body_limit)
        return (EdgeWaf, (*args, self.response_body_limit, self.response_types))

    def __call__(self, request: RequestReceived, ctx: RequestContext) -> Decision:
        route = ctx.route
        if route is None:
            return CONTINUE
        # The zone's phases as last looked up: requests in a row usually go to the same zone of the same
        # snapshot, and each lookup in the snapshot's read-only mappings (a method call, then the Phase
        # enum's interpreted __hash__) cost ≈ 500 instructions.
        snapshot = ctx.snapshot
        zone = self._last_zone
        if zone.snapshot is not snapshot or zone.zone_id is not route.zone_id:
            zone = self._last_zone = self._lookup(snapshot, route.zone_id)
        phases = zone.phases
        if not phases and self.managed is None:
            return CONTINUE  # the common case for zones without rules: no field values computed at all
        # Field values are built only for the phases that read them: Origin Rules that route by hostname
        # are remembered per host (origin_rules_memo.py), and a zone without custom, rate-limit or managed
        # rules skips evaluate_request altogether.
        values: FieldValues | None = None
        origin = zone.origin
        if origin:
            outcome = self.origin_memo.outcome(snapshot, route.zone_id, origin, ctx.host)
            if outcome is None:
                values = FieldValues(request_fields(request, ctx, self.wall_clock()))
                outcome = evaluate_origin(values, origin)
            ctx.origin_override, ctx.origin_rule_ids = outcome
            if zone.origin_alone and self.managed is None:
                ctx.waf = NO_MATCH  # Origin Rules alone (the common ruleset): no other phase to look up
                return CONTINUE
        scans = zone.scans
        if scans is not None and zone.plan is not None and self.managed is None:
            # Custom rules alone: their scans, over the fields they read filled from the request head. When
            # none matches the verdict is evaluate_request's (no rule matched, no other phase); otherwise
            # evaluate_request runs below over the same values (scans are pure: the same rule matches).
            fields_plan = zone.plan
            fields: dict[str, Any]
            if values is not None:
                fields = values
            elif fields_plan.complete:
                fields = self._fields.fill_plain(fields_plan, request, ctx, self.wall_clock)  # no FieldValues made
            else:
                fields = values = self._fields.fill(
                    fields_plan, request, ctx, self.wall_clock, _Make(request, ctx, self.wall_clock)
                )
            for scan in scans:
                if scan(fields) >= 0:
                    break
            else:
                ctx.waf = NO_MATCH
                return CONTINUE
            if values is None:
                values = field_values(fields, _Make(request, ctx, self.wall_clock))
        verdict = NO_MATCH
        if self.managed is not None or zone.custom or zone.ratelimit:
            if values is None:
                request_plan = zone.request_plan
                if request_plan is not None and self.managed is None:
                    # Custom and rate-limit rules alone: the fields they read, filled from the request head; a
                    # field none of them names is computed from the whole request, made then (FieldValues).
                    make = _Make(request, ctx, self.wall_clock)
                    values = self._fields.fill(request_plan, request, ctx, self.wall_clock, make)
                else:
                    values = FieldValues(request_fields(request, ctx, self.wall_clock()))
            verdict = evaluate_phases(values, zone.custom, zone.ratelimit, self.limiter, self.clock(), self.managed)
        respond: ManagedResponse | None = None
        response_rules = zone.response
        if response_rules and not verdict.terminated and _RESPONSE_NAME not in verdict.skipped_phases:
            if values is None:
                values = FieldValues(request_fields(request, ctx, self.wall_clock()))
            respond, verdict = self._plan_response(request, ctx, values, response_rules, verdict)
        managed = zone.managed
        if managed and not verdict.terminated and _MANAGED_NAME not in verdict.skipped_phases:
            if values is None:
                values = FieldValues(request_fields(request, ctx, self.wall_clock()))
            plan, matches = plan_managed(values, managed)
            if plan is not None and request.body != "none":
                ctx.waf = verdict
                accept = request.header(b"accept")
                ctx.body_inspection = _ManagedBody(plan, values, verdict, ctx, accept, self.body_limit, respond)
                return CONTINUE
            if plan is not None:
                managed_verdict, transaction = run_managed_keeping(plan, request_of(values))
                verdict = _merge(verdict, managed_verdict)
                if respond is not None:
                    respond.transaction = transaction
            elif matches:
                verdict = _merge(verdict, Verdict(matches=matches))
        ctx.waf = verdict
        if not verdict.terminated:
            return CONTINUE
        ctx.response_inspection = None
        return block_response(verdict, request.header(b"accept"), ctx.ray_id, ctx.host)

    def _lookup(self, snapshot: Snapshot | None, zone_id: str) -> _ZoneLookup:
        if snapshot is not self._zones_of:
            self._zones, self._zones_of = {}, snapshot
        zone = self._zones.get(zone_id)
        if zone is None:
            zone = self._zones[zone_id] = _ZoneLookup(snapshot, zone_id)
        return zone

    def _plan_response(
        self,
        request: RequestReceived,
        ctx: RequestContext,
        values: FieldValues,
        rulesets: tuple[CompiledRuleset, ...],
        verdict: Verdict,
    ) -> tuple[ManagedResponse | None, Verdict]:
        """The response phase's plan (on ``ctx.response_inspection``), and the verdict with the response
        entry point's skip/log matches when it does not execute the ruleset."""
        plan, matches = plan_managed(values, rulesets, _RESPONSE)
        if plan is None:
            return None, _merge(verdict, Verdict(matches=matches)) if matches else verdict
        respond = ManagedResponse(
            plan, values, ctx, request.header(b"accept"), self.response_body_limit, self.response_types
        )
        ctx.response_inspection = respond
        return respond, verdict


class _Make:
    """Builds the request's :class:`~originlock.waf.RequestFields` when a rule reads a field not filled."""

    __slots__ = ("ctx", "request", "wall_clock")

    def __init__(self, request: RequestReceived, ctx: RequestContext, wall_clock: Callable[[], float]) -> None:
        self.request = request
        self.ctx = ctx
        self.wall_clock = wall_clock

    def __call__(self) -> RequestFields:
        return request_fields(self.request, self.ctx, self.wall_clock())


def _merge(first: Verdict, managed: Verdict) -> Verdict:
    """The verdict of the earlier phases followed by the managed phase's."""
    return Verdict(
        managed.action,
        managed.rule_id,
        managed.phase,
        managed.response,
        first.matches + managed.matches,
        first.skipped_phases,
        first.skipped_products,
        managed.score,
    )


class _ManagedBody:
    """The managed phase of a request with a body, run by the exchange once the body prefix is read."""

    __slots__ = ("accept", "ctx", "earlier", "limit", "plan", "respond", "values")

    def __init__(
        self,
        plan: ManagedPlan,
        values: FieldValues,
        earlier: Verdict,
        ctx: RequestContext,
        accept: bytes | None,
        limit: int,
        respond: ManagedResponse | None = None,
    ) -> None:
        self.plan = plan
        self.values = values
        self.earlier = earlier
        self.ctx = ctx
        self.accept = accept
        self.limit = limit
        #: The response phase, which continues this request's CRS transaction.
        self.respond = respond

    def __call__(self, body: bytes) -> Decision:
        managed, transaction = run_managed_keeping(self.plan, request_of(self.values, body[: self.limit]))
        verdict = _merge(self.earlier, managed)
        ctx = self.ctx
        ctx.waf = verdict
        if self.respond is not None:
            self.respond.transaction = transaction
        if not verdict.terminated:
            return CONTINUE
        ctx.response_inspection = None
        return block_response(verdict, self.accept, ctx.ray_id, ctx.host)
