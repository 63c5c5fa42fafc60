"""Phase WAF: the zone's rulesets, evaluated before any origin connection is opened (docs/waf.md).

Theory of operation. The snapshot carries each zone's compiled entry-point rulesets per phase
(``Snapshot.waf``). For a request to a zone with rules, :class:`EdgeWaf` builds one
:class:`~originlock.waf.RequestFields` from the parsed head and the context, then runs, in Cloudflare's
order (spec §2.5): ``http_request_origin`` (Origin Rules: the merged ``route`` override is stored on the
context and applied by ORIGIN_SELECT), ``http_request_firewall_custom``, ``http_ratelimit`` and the
managed-phase hook (none yet). A terminating verdict becomes the rule's custom response or a 1020/1015
page; the verdict and matching rule ids are kept on the context for the access log.

Rate-limit counters live in one :class:`~originlock.waf.RateLimiter` per hook instance, i.e. per edge
process (one process is one Cloudflare "colo"; ``--workers N`` counts per process). The clocks are
injected: pure code reads no time, and tests drive rate limiting without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from originlock.pipeline.builtin.waf_pages import block_response
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import CONTINUE, Decision
from originlock.proto.events import RequestReceived
from originlock.proto.target import path_and_query
from originlock.waf import FieldValues, Phase, RateLimiter, RequestFields, evaluate_origin, evaluate_request
from originlock.waf.rules import ManagedHook

__all__ = ["EdgeWaf", "request_fields"]

_VERSIONS: Final = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0"}


def request_fields(request: RequestReceived, ctx: RequestContext, wall_time: float) -> RequestFields:
    """What the Rules language sees of ``request`` (``wall_time``: seconds since the epoch)."""
    path, query = path_and_query(request.target)  # the target is normalised by the parser already
    extra: dict[str, object] = {"cf.ray_id": ctx.ray_id.encode()}
    if ctx.tls_version:
        extra["cf.tls_version"] = ctx.tls_version.encode()
    if ctx.route is not None:
        # What account-level rulesets select zones by (store/account_rulesets.py).
        extra["cf.zone.name"] = ctx.route.zone_name.encode()
    return RequestFields(
        method=request.method.decode("latin-1"),
        host=ctx.host,
        path=path.decode("latin-1"),
        query=query.decode("latin-1"),
        headers=tuple(request.headers),
        ip=ctx.client_ip,
        scheme=ctx.scheme,
        ssl=ctx.scheme == "https",
        http_version=_VERSIONS.get(request.version, "HTTP/1.1"),
        timestamp=wall_time,
        extra=extra,  # type: ignore[arg-type]
    )


class EdgeWaf:
    """The :class:`~originlock.pipeline.hooks.WafHook` of ``originlock serve``.

    Picklable (``--workers`` sends it to each worker process, which then counts on its own copy), as
    long as the clocks are module-level functions such as ``time.monotonic``.

    Args:
        clock: monotonic seconds for rate limiting.
        wall_clock: seconds since the epoch, for ``http.request.timestamp.*``.
        managed: the managed-phase hook (a later issue); None skips the phase.
    """

    def __init__(
        self, clock: Callable[[], float], wall_clock: Callable[[], float], managed: ManagedHook | None = None
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.managed = managed
        self.limiter = RateLimiter()

    def __repr__(self) -> str:
        return f"EdgeWaf(rate_limit_keys={len(self.limiter)})"

    def __reduce__(self) -> tuple[type[EdgeWaf], tuple[Callable[[], float], Callable[[], float], ManagedHook | None]]:
        # --workers pickles the hook into each process. Compiled by mypyc, the class has no default
        # reduction; each process starts with its own empty rate limiter either way (one colo each).
        return (EdgeWaf, (self.clock, self.wall_clock, self.managed))

    def __call__(self, request: RequestReceived, ctx: RequestContext) -> Decision:
        route = ctx.route
        if route is None:
            return CONTINUE
        phases = ctx.snapshot.waf.get(route.zone_id)
        if not phases and self.managed is None:
            return CONTINUE  # the common case for zones without rules: no field values computed at all
        phases = phases or {}
        values = FieldValues(request_fields(request, ctx, self.wall_clock()))
        origin = phases.get(Phase.HTTP_REQUEST_ORIGIN)
        if origin:
            ctx.origin_override, ctx.origin_rule_ids = evaluate_origin(values, origin)
        verdict = evaluate_request(values, phases, limiter=self.limiter, now=self.clock(), managed=self.managed)
        ctx.waf = verdict
        if not verdict.terminated:
            return CONTINUE
        return block_response(verdict, request.header(b"accept"), ctx.ray_id, ctx.host)
