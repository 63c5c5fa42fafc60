"""Phase LOG: one JSON line per request (docs/architecture.md: access logs as JSON lines).

The line is the compact ``json.dumps`` of the record (``separators=(",", ":")``, ASCII-escaped), built
directly as one string: each text field goes through ``json``'s own C escaper and numbers through
``repr`` as ``json`` does, so the bytes are those ``json.dumps`` gives, without building a dict and
walking it per request (docs/performance.md, access log step). Only the rare nested parts (WAF matches,
Origin Rules ids) go through ``json.dumps``.

Most of a line repeats the previous one: the visitor's address and scheme (a keep-alive connection), the
host, method and path (a popular page), status and size, the zone and origin. Each such run of fields is
kept rendered, with the names and punctuation around it, next to what it was rendered from, and reused
when the request's values are the same (identical or equal: the text depends on nothing else); so a line
is nine parts joined once, not the ~25 names, values and conversions of the record (docs/performance.md,
issue 11, accessline). The remembered parts are module state, written only from the event loop's thread
(the request path's).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Final

from originlock.cache import BoundedCache
from originlock.origin.peer import OriginPeer
from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived
from originlock.snapshot.model import Route
from originlock.waf import NO_MATCH, RuleMatch

__all__ = ["access_log_line"]

#: The shared no-match verdict as a static: an imported name is a module-dict lookup per use, compiled.
_NO_MATCH: Final = NO_MATCH

#: ``json``'s escaper for ``str`` (the C one where available): quotes included, non-ASCII as ``\uXXXX``.
_quote: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii

#: ``n / 1000``'s point and digits after it as ``repr`` writes them: no trailing zeros, at least one digit.
_FRACTIONS: Final = tuple("." + (f"{i:03d}".rstrip("0") or "0") for i in range(1000))
#: The time's fraction and the field after it (the ray id's name and opening quote): one part of the line.
_FRACTIONS_RAY: Final = tuple(f + ',"ray_id":"' for f in _FRACTIONS)

#: Quoted JSON strings of the texts that repeat from request to request (hostnames, zone names, origins,
#: client-certificate ids, methods, common paths), so that most lines call no escaper: a lookup costs a
#: tenth of an escaper call. Keyed by the text itself, so a hit is exactly what the escaper returns;
#: bounded, so varied paths cost one insertion each and never grow it.
_MEMO_SIZE: Final = 4096
_QUOTED: Final = BoundedCache[str, str](_MEMO_SIZE)
_QUOTED_RAW: Final = BoundedCache[bytes, str](_MEMO_SIZE)


def _q(text: str) -> str:
    """``_quote(text)``, remembered."""
    quoted = _QUOTED.get(text)
    return quoted if quoted is not None else _QUOTED.put(text, _quote(text))


def _q_raw(raw: bytes) -> str:
    """``_quote(raw.decode("latin-1"))`` (a method or target as received), remembered."""
    quoted = _QUOTED_RAW.get(raw)
    return quoted if quoted is not None else _QUOTED_RAW.put(raw, _quote(raw.decode("latin-1")))


class _Seconds:
    """The last whole second rendered, after the line's opening: it changes once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.text = ""


_SECONDS: Final = _Seconds()


class _VisitorPart:
    """``","client_ip":"…","scheme":"…","host":`` as last rendered, and its two values (the same for every
    request of a connection). The address is an IP literal from the socket and the scheme ``http`` or
    ``https``: neither needs escaping."""

    __slots__ = ("client_ip", "scheme", "text")

    def __init__(self) -> None:
        self.client_ip = ""
        self.scheme = ""
        self.text = ""


_VISITOR: Final = _VisitorPart()


def _visitor_part(client_ip: str, scheme: str) -> str:
    last = _VISITOR
    if client_ip == last.client_ip and scheme == last.scheme and last.text:
        return last.text
    text = f'","client_ip":"{client_ip}","scheme":"{scheme}","host":'
    last.client_ip, last.scheme, last.text = client_ip, scheme, text
    return text


class _RequestPart:
    """``"<host>","method":"…","path":"…","status":`` as last rendered, and the host, method and target it
    was rendered from: the same for repeats of a request (compared by equality, bytes as received)."""

    __slots__ = ("host", "method", "target", "text")

    def __init__(self) -> None:
        self.host = ""
        self.method = b""
        self.target = b""
        self.text = ""


_REQUEST: Final = _RequestPart()


def _request_part(host: str, request: RequestReceived | None) -> str:
    if request is None:  # a head that did not parse: no method or path
        return f'{_q(host)},"method":"","path":"","status":'
    last = _REQUEST
    method, target = request.method, request.target
    if target == last.target and method == last.method and host == last.host and last.text:
        return last.text
    # GET by comparison: the memo's lookup hashes the parser's new bytes object first.
    quoted_method = '"GET"' if method == b"GET" else _q_raw(method)
    text = f'{_q(host)},"method":{quoted_method},"path":{_q_raw(target)},"status":'
    last.host, last.method, last.target, last.text = host, method, target, text
    return text


#: Integers below 1000 as text (status codes, whole milliseconds): a lookup where formatting one costs
#: ~200 instructions.
_SMALL_INTS: Final = tuple(str(n) for n in range(1000))


class _StatusPart:
    """``<status>,"bytes":<n>,"duration_ms":`` as last rendered, and the two numbers."""

    __slots__ = ("sent", "status", "text")

    def __init__(self) -> None:
        self.status = -1
        self.sent = -1
        self.text = ""


_STATUS: Final = _StatusPart()


def _status_part(status: int, sent: int) -> str:
    last = _STATUS
    if status == last.status and sent == last.sent and last.text:
        return last.text
    text = f'{_status(status)},"bytes":{sent},"duration_ms":'
    last.status, last.sent, last.text = status, sent, text
    return text


def _status(status: int) -> str:
    return _SMALL_INTS[status] if 0 <= status < 1000 else str(status)


class _OriginFields:
    """The origin fields of a line up to ``"origin_reused":``, for one origin host: the same for every
    request to that origin, so built and escaped once (compared by port, scheme and certificate object,
    which is immutable)."""

    __slots__ = ("cert", "port", "text", "tls")

    def __init__(self, peer: OriginPeer) -> None:
        self.port = peer.port
        self.tls = peer.tls
        self.cert = peer.client_cert
        origin = _quote(f"{'https' if peer.tls else 'http'}://{peer.host}:{peer.port}")
        cert = _quote(peer.client_cert.id) if peer.client_cert is not None else "null"
        self.text = f',"origin":{origin},"client_cert":{cert},"origin_reused":'


_ORIGINS: Final = BoundedCache[str, _OriginFields](_MEMO_SIZE)


def _origin_fields(peer: OriginPeer) -> str:
    fields = _ORIGINS.get(peer.host)
    if fields is None or fields.port != peer.port or fields.tls != peer.tls or fields.cert is not peer.client_cert:
        fields = _ORIGINS.put(peer.host, _OriginFields(peer))
    return fields.text


#: ``origin_reused`` and the optional ``origin_retried`` after it, by ``2 * retried + reused``: one part.
_REUSED: Final = ("false", "true", 'false,"origin_retried":true', 'true,"origin_retried":true')


class _ZoneTail:
    """The line's zone, generation and origin fields as last built, and what they were built from: the same
    for every request of a route, snapshot and peer in a row (routes and peers compared by identity; both
    are immutable), so one comparison instead of two memo lookups, an integer formatted and four parts.
    ``closed``: the same, ended as most lines end (the reuse flags by ``2 * retried + reused``, then ``}``)."""

    __slots__ = ("closed", "generation", "peer", "route", "text")

    def __init__(self) -> None:
        self.route: Route | None = None
        self.peer: OriginPeer | None = None
        self.generation = -1
        self.text = ""
        self.closed: tuple[str, ...] = ()


_ZONE_TAIL: Final = _ZoneTail()


def _zone_tail(route: Route | None, peer: OriginPeer | None, generation: int) -> _ZoneTail:
    tail = _ZONE_TAIL
    if route is tail.route and peer is tail.peer and generation == tail.generation and tail.text:
        return tail
    zone = _q(route.zone_name) if route is not None else '""'
    origin = _origin_fields(peer) if peer is not None else ""
    text = f',"zone":{zone},"generation":{generation}{origin}'
    # Without an origin there are no reuse flags: every index ends the same.
    closed = tuple(text + reused + "}" for reused in _REUSED) if peer is not None else (text + "}",) * 4
    tail.route, tail.peer, tail.generation, tail.text, tail.closed = route, peer, generation, text, closed
    return tail


def _thousandths(n: int) -> str:
    """``json.dumps(n / 1000)`` for ``|n| < 10**15``, with integer arithmetic: ``n / 1000`` has at most 15
    significant digits there, so the shortest string naming that double (its repr) is the decimal itself
    with the trailing zeros dropped (and one kept after the point)."""
    if n < 0:
        return "-" + _thousandths(-n)
    return f"{n // 1000}{_FRACTIONS[n % 1000]}"


def _millis(value: float) -> str:
    """``value`` to the nearest thousandth, rendered as json renders floats: ``json.dumps(n / 1000)`` where
    ``n`` is ``value * 1000`` rounded half away from zero. That is ``round(value, 3)`` (what the line held
    before) except for a value within a rounding error of a half-thousandth (``value * 1000`` is itself
    rounded), and about twice as cheap as formatting the float (CPython's dtoa: ≈ 3.5k instructions)."""
    if -1e12 < value < 1e12:
        scaled = value * 1000.0
        if scaled > 0.0:
            return _thousandths(int(scaled + 0.5))
        if scaled < 0.0:
            # -0.0 when it rounds to zero, as round() gives and json writes.
            return "-" + _thousandths(int(0.5 - scaled))
        return "-0.0" if math.copysign(1.0, scaled) < 0.0 else "0.0"
    return repr(round(value, 3))


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def access_log_line(ctx: RequestContext, request: RequestReceived | None, now: float, wall_time: float) -> str:
    """The access-log record for a finished request (``now`` monotonic, ``wall_time`` Unix seconds)."""
    # The two numbers with a fraction, from integers (see _millis) and the common case inline: a time of
    # day in this century (its seconds' digits rendered once a second, with the line's opening) and a
    # duration under 10**12 ms. The time's fraction carries the ray id's name after it: one part.
    scaled = wall_time * 1000.0
    if 0.0 < scaled < 1e15:
        n = int(scaled + 0.5)
        second = n // 1000
        seconds = _SECONDS
        if second != seconds.second:
            seconds.second = second
            seconds.text = '{"time":' + str(second)
        # ``n % 1000``, not ``n - second * 1000``: compiled, a product of a tagged integer above 2**30 (the
        # seconds since 1970) takes the arbitrary-precision path (≈ 400 instructions); the remainder does not.
        time_head, time_frac = seconds.text, _FRACTIONS_RAY[n % 1000]
    else:
        time_head, time_frac = '{"time":' + _millis(wall_time), ',"ray_id":"'
    scaled = (now - ctx.started) * 1000.0 * 1000.0
    if 0.0 < scaled < 1e15:
        n = int(scaled + 0.5)
        whole = n // 1000
        duration_int = _SMALL_INTS[whole] if whole < 1000 else str(whole)
        duration_frac = _FRACTIONS[n % 1000]
    else:
        duration_int, duration_frac = _millis((now - ctx.started) * 1000.0), ""
    tail = _zone_tail(ctx.route, ctx.peer, ctx.snapshot.generation)
    reused = (2 if ctx.origin_retried else 0) + (1 if ctx.origin_reused else 0)
    verdict = ctx.waf
    # The shared no-match verdict (every request of a zone whose rules matched nothing) by identity: no
    # attribute of the interpreted Verdict read, no property called.
    if (
        (verdict is not None and verdict is not _NO_MATCH and (verdict.matches or verdict.action is not None))
        or ctx.origin_rule_ids
        or ctx.error_code
    ):
        end = tail.text + (_REUSED[reused] if ctx.peer is not None else "") + _extra(ctx) + "}"
    else:
        end = tail.closed[reused]
    # Our own ray ids need no escaping (RayIds.json_plain): written as they are, without the escaper's call.
    ray_id = ctx.ray_id if ctx.ray_id_plain else _quote(ctx.ray_id)[1:-1]
    return (
        f"{time_head}{time_frac}{ray_id}{_visitor_part(ctx.client_ip, ctx.scheme)}{_request_part(ctx.host, request)}"
        f"{_status_part(ctx.status, ctx.bytes_sent)}{duration_int}{duration_frac}{end}"
    )


def _extra(ctx: RequestContext) -> str:
    """The rare parts: the WAF's verdict when a rule matched or acted, Origin Rules ids, the error."""
    extra = ""
    verdict = ctx.waf
    if verdict is not None and verdict is not NO_MATCH and (verdict.matches or verdict.action is not None):
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
        extra = f',"waf":{_dumps(waf)}'
    if ctx.origin_rule_ids:
        extra += f',"origin_rules":{_dumps(list(ctx.origin_rule_ids))}'
    if ctx.error_code:
        extra += f',"error":{ctx.error_code},"error_detail":{_quote(ctx.error_detail)}'
    return extra


def _match(m: RuleMatch) -> dict[str, object]:
    out: dict[str, object] = {"rule_id": m.rule_id, "action": m.action.value, "phase": m.phase.value}
    if m.ref is not None:
        out["ref"] = m.ref
    if m.score is not None:
        out["score"] = m.score
    return out
