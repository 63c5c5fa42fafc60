"""Phase LOG: one JSON line per request (DESIGN.md: access logs as JSON lines)."""

from __future__ import annotations

import json

from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived
from originlock.waf import RuleMatch

__all__ = ["access_log_line"]


def access_log_line(ctx: RequestContext, request: RequestReceived | None, now: float, wall_time: float) -> str:
    """The access-log record for a finished request (``now`` monotonic, ``wall_time`` Unix seconds)."""
    record: dict[str, object] = {
        "time": round(wall_time, 3),
        "ray_id": ctx.ray_id,
        "client_ip": ctx.client_ip,
        "scheme": ctx.scheme,
        "host": ctx.host,
        "method": request.method.decode("latin-1") if request else "",
        "path": request.target.decode("latin-1") if request else "",
        "status": ctx.status,
        "bytes": ctx.bytes_sent,
        "duration_ms": round((now - ctx.started) * 1000, 3),
        "zone": ctx.route.zone_name if ctx.route else "",
        "generation": ctx.snapshot.generation,
    }
    if ctx.peer is not None:
        peer = ctx.peer
        record["origin"] = f"{'https' if peer.tls else 'http'}://{peer.host}:{peer.port}"
        record["client_cert"] = peer.client_cert.id if peer.client_cert else None
        record["origin_reused"] = ctx.origin_reused
        if ctx.origin_retried:
            record["origin_retried"] = True
    if ctx.waf is not None and (ctx.waf.matches or ctx.waf.terminated):
        # Every matching rule is logged (log, skip and terminating actions), as users need the full list
        # to tune rules before enforcing them (spec §4).
        verdict = ctx.waf
        waf: dict[str, object] = {
            "action": verdict.action.value if verdict.action else None,
            "rule_id": verdict.rule_id,
            "phase": verdict.phase.value if verdict.phase else None,
            "matches": [_match(m) for m in verdict.matches],
        }
        if verdict.score is not None:
            waf["score"] = verdict.score
        record["waf"] = waf
    if ctx.origin_rule_ids:
        record["origin_rules"] = list(ctx.origin_rule_ids)
    if ctx.error_code:
        record["error"] = ctx.error_code
        record["error_detail"] = ctx.error_detail
    return json.dumps(record, separators=(",", ":"))


def _match(m: RuleMatch) -> dict[str, object]:
    out: dict[str, object] = {"rule_id": m.rule_id, "action": m.action.value, "phase": m.phase.value}
    if m.ref is not None:
        out["ref"] = m.ref
    if m.score is not None:
        out["score"] = m.score
    return out
