"""Phase LOG: one JSON line per request (docs/architecture.md: access logs as JSON lines).

The line is the compact ``json.dumps`` of the record (``separators=(",", ":")``, ASCII-escaped), built
directly as one string: each text field goes through ``json``'s own C escaper and numbers through
``repr`` as ``json`` does, so the bytes are those ``json.dumps`` gives, without building a dict and
walking it per request (docs/performance.md, access log step). Only the rare nested parts (WAF matches,
Origin Rules ids) go through ``json.dumps``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Final

from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived
from originlock.waf import RuleMatch

__all__ = ["access_log_line"]

#: ``json``'s escaper for ``str`` (the C one where available): quotes included, non-ASCII as ``\uXXXX``.
_quote: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii


def _millis(value: float) -> str:
    """``repr(round(value, 3))``, json's rendering of the rounded number, at less than half the cost: the
    correctly rounded ``.3f`` format is the decimal ``round`` picks, and below 10**12 (15 significant digits)
    that decimal without trailing zeros is the shortest string naming the same double, i.e. its repr."""
    if -1e12 < value < 1e12:
        text = f"{value:.3f}".rstrip("0")
        return text + "0" if text[-1] == "." else text
    return repr(round(value, 3))


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def access_log_line(ctx: RequestContext, request: RequestReceived | None, now: float, wall_time: float) -> str:
    """The access-log record for a finished request (``now`` monotonic, ``wall_time`` Unix seconds)."""
    q = _quote
    # client_ip (an IP literal from the socket) and scheme ("http"/"https") never need escaping.
    zone = q(ctx.route.zone_name) if ctx.route is not None else '""'
    if request is not None:
        method = q(request.method.decode("latin-1"))
        path = q(request.target.decode("latin-1"))
    else:
        method = path = '""'
    line = (
        f'{{"time":{_millis(wall_time)},"ray_id":{q(ctx.ray_id)},"client_ip":"{ctx.client_ip}",'
        f'"scheme":"{ctx.scheme}","host":{q(ctx.host)},"method":{method},"path":{path},'
        f'"status":{ctx.status},"bytes":{ctx.bytes_sent},"duration_ms":{_millis((now - ctx.started) * 1000)},'
        f'"zone":{zone},"generation":{ctx.snapshot.generation}'
    )
    peer = ctx.peer
    if peer is not None:
        origin = q(f"{'https' if peer.tls else 'http'}://{peer.host}:{peer.port}")
        cert = q(peer.client_cert.id) if peer.client_cert is not None else "null"
        line += f',"origin":{origin},"client_cert":{cert},"origin_reused":{"true" if ctx.origin_reused else "false"}'
        if ctx.origin_retried:
            line += ',"origin_retried":true'
    verdict = ctx.waf
    if verdict is not None and (verdict.matches or verdict.terminated):
        # Every matching rule is logged (log, skip and terminating actions), as users need the full list
        # to tune rules before enforcing them (spec §4).
        waf: dict[str, object] = {
            "action": verdict.action.value if verdict.action else None,
            "rule_id": verdict.rule_id,
            "phase": verdict.phase.value if verdict.phase else None,
            "matches": [_match(m) for m in verdict.matches],
        }
        if verdict.score is not None:
            waf["score"] = verdict.score
        if verdict.outbound_score is not None:
            waf["outbound_score"] = verdict.outbound_score
        line += f',"waf":{_dumps(waf)}'
    if ctx.origin_rule_ids:
        line += f',"origin_rules":{_dumps(list(ctx.origin_rule_ids))}'
    if ctx.error_code:
        line += f',"error":{ctx.error_code},"error_detail":{q(ctx.error_detail)}'
    return line + "}"


def _match(m: RuleMatch) -> dict[str, object]:
    out: dict[str, object] = {"rule_id": m.rule_id, "action": m.action.value, "phase": m.phase.value}
    if m.ref is not None:
        out["ref"] = m.ref
    if m.score is not None:
        out["score"] = m.score
    return out
