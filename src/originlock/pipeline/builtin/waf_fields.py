"""The field values a zone's custom rules read, filled from the parsed request head (compiled).

Why: for a zone with 25 custom rules the WAF hook spent about half its ≈ 78k instructions per request
building the whole :class:`~originlock.waf.RequestFields` (an interpreted frozen dataclass) and then
computing each field from it through interpreted extractors (``waf/context.py``). The rules read a
handful of fields (``http.host``, ``http.request.uri.path``, the user agent…): this module computes
exactly those, in compiled code, straight from :class:`~originlock.proto.events.RequestReceived` and the
context, with the same values the extractors give (``tests/pipeline/test_pipeline_waf_fields.py``
compares every field over many requests). Any other field is computed on demand as before: the
:class:`~originlock.waf.FieldValues` built here makes the request only if a rule asks for a field
not filled (``FieldValues(None, make)``).

:class:`FieldPlan` is what one zone's rules read, worked out once per snapshot; :class:`FieldFiller`
fills per request and keeps the last visitor address's ``ip.src`` (a pure function of the text).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived
from originlock.proto.target import path_and_query
from originlock.waf import FieldValues, RequestFields
from originlock.waf.context import dependencies, extractor, host_bytes, ip_value, normalize_path

__all__ = ["FILLABLE", "FieldFiller", "FieldPlan", "field_values"]

_VERSIONS: Final = {b"1.1": b"HTTP/1.1", b"1.0": b"HTTP/1.0"}
#: ``http.request.method`` of the usual methods, without two method calls (others: the extractor's formula).
_METHODS: Final = {m: m for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT")}
#: Header fields read from the header map, and how their values are joined (context.py).
_HEADER_FIELDS: Final = (
    ("http.user_agent", b"user-agent", b", "),
    ("http.referer", b"referer", b", "),
    ("http.x_forwarded_for", b"x-forwarded-for", b", "),
    ("http.cookie", b"cookie", b"; "),
)
#: What :meth:`FieldFiller.fill` can fill; the dependencies of any other field read are filled for it.
FILLABLE: Final = frozenset(
    {
        "http.request.uri.path",
        "raw.http.request.uri.path",
        "http.request.uri.query",
        "raw.http.request.uri.query",
        "http.request.headers",
        *(name for name, _, _ in _HEADER_FIELDS),
        "http.request.method",
        "http.host",
        "ip.src",
        "ssl",
        "http.request.version",
        "http.request.timestamp.sec",
        "http.request.timestamp.msec",
    }
)
_new: Final = dict.__new__
_set: Final = object.__setattr__


class FieldPlan:
    """Which fields one zone's rules read (and what the fields this module cannot fill are computed from)."""

    __slots__ = (
        "complete",
        "extra",
        "extra_names",
        "header_map",
        "headers",
        "host",
        "ip",
        "joined",
        "method",
        "path",
        "query",
        "raw_path",
        "raw_query",
        "ssl",
        "timestamp",
        "version",
    )

    def __init__(self, names: Iterable[str]) -> None:
        names = set(names)
        wanted: set[str] = set()
        for name in names:
            wanted.add(name)
            if name not in FILLABLE:
                wanted.update(dependencies(name))
        self.path = "http.request.uri.path" in wanted
        self.raw_path = "raw.http.request.uri.path" in wanted
        self.query = "http.request.uri.query" in wanted
        self.raw_query = "raw.http.request.uri.query" in wanted
        #: (field, header name, separator) of the header fields read.
        self.joined: tuple[tuple[str, bytes, bytes], ...] = tuple(f for f in _HEADER_FIELDS if f[0] in wanted)
        self.header_map = "http.request.headers" in wanted
        self.headers = self.header_map or bool(self.joined)
        self.method = "http.request.method" in wanted
        self.host = "http.host" in wanted
        self.ip = "ip.src" in wanted
        self.ssl = "ssl" in wanted
        self.version = "http.request.version" in wanted
        self.timestamp = "http.request.timestamp.sec" in wanted or "http.request.timestamp.msec" in wanted
        #: A field only ``RequestFields.extra`` supplies (``cf.ray_id``…): FieldValues reads it from there
        #: only when built from a request, so the filler puts the request's extra fields in itself.
        self.extra = any(extractor(name) is None for name in wanted)
        #: The fields read that only ``RequestFields.extra`` supplies.
        self.extra_names = tuple(sorted(name for name in names if extractor(name) is None))
        #: Every field read is filled or an extra field: the rules can run over a plain dict
        #: (:meth:`FieldFiller.fill_plain`), no ``FieldValues`` needed unless one matches.
        self.complete = all(name in FILLABLE or extractor(name) is None for name in names)


def _header_map(headers: list[tuple[bytes, bytes]]) -> dict[bytes, tuple[bytes, ...]]:
    """``waf.context.header_map``, compiled."""
    out: dict[bytes, tuple[bytes, ...]] = {}
    for name, value in headers:
        key = name.lower()
        found = out.get(key)
        out[key] = (value,) if found is None else (*found, value)
    return out


class FieldFiller:
    """Fills :class:`~originlock.waf.FieldValues` by a :class:`FieldPlan` (one per hook: not shared)."""

    __slots__ = ("_last_ip", "_last_ip_value")

    def __init__(self) -> None:
        self._last_ip: str | None = None
        self._last_ip_value: Any = None

    def fill(
        self,
        plan: FieldPlan,
        request: RequestReceived,
        ctx: RequestContext,
        wall_clock: Callable[[], float],
        make: Callable[[], RequestFields],
    ) -> FieldValues:
        """The planned fields of ``request`` (``make`` builds the whole request if another is asked for)."""
        # FieldValues(None, make) without its interpreted __init__ (what it sets, directly; a test checks
        # that a field not filled is computed from what make builds).
        values: FieldValues = _new(FieldValues)
        _set(values, "_request", make)
        self._fill(plan, request, ctx, wall_clock, values)
        return values

    def fill_plain(
        self, plan: FieldPlan, request: RequestReceived, ctx: RequestContext, wall_clock: Callable[[], float]
    ) -> dict[str, Any]:
        """The fields of a :attr:`~FieldPlan.complete` plan in a plain dict, every field read present (an
        extra field the request lacks is None, as ``FieldValues`` reads it).

        Why: storing into a dict subclass and making one cost ≈ 3k instructions more per request than a
        plain dict (docs/performance.md, "Issue 11, waf3"); :func:`field_values` makes the ``FieldValues``
        when a rule matches.
        """
        fields: dict[str, Any] = {}
        self._fill(plan, request, ctx, wall_clock, fields)
        for name in plan.extra_names:
            if name not in fields:
                fields[name] = None
        return fields

    def _fill(
        self,
        plan: FieldPlan,
        request: RequestReceived,
        ctx: RequestContext,
        wall_clock: Callable[[], float],
        values: dict[str, Any],
    ) -> None:
        if plan.path or plan.raw_path or plan.query or plan.raw_query:
            path, query = path_and_query(request.target)
            raw = path or b"/"
            if plan.raw_path:
                values["raw.http.request.uri.path"] = raw
            if plan.path:
                # normalize_path's own test for "nothing to normalise" (ints: `bytes in bytes` is slower).
                plain = 0x25 not in raw and (0x2E not in raw or raw.find(b"/.") < 0) and raw.startswith(b"/")
                values["http.request.uri.path"] = raw if plain else normalize_path(raw)
            if plan.query:
                values["http.request.uri.query"] = query
            if plan.raw_query:
                values["raw.http.request.uri.query"] = query
        if plan.headers:
            headers = _header_map(request.headers)
            if plan.header_map:
                values["http.request.headers"] = headers
            for name, header, separator in plan.joined:
                found = headers.get(header)
                if found is None:
                    values[name] = None
                else:
                    values[name] = found[0] if len(found) == 1 else separator.join(found)
        if plan.method:
            method = _METHODS.get(request.method)
            if method is None:
                method = request.method.decode("latin-1").upper().encode()
            values["http.request.method"] = method
        if plan.host:
            host = ctx.host
            values["http.host"] = host.encode() if host.isascii() else host_bytes(host)
        if plan.ip:
            ip = ctx.client_ip
            if ip != self._last_ip:
                self._last_ip_value = ip_value(ip)
                self._last_ip = ip
            values["ip.src"] = self._last_ip_value
        if plan.ssl:
            values["ssl"] = ctx.scheme == "https"
        if plan.version:
            values["http.request.version"] = _VERSIONS.get(request.version, b"HTTP/1.1")
        if plan.timestamp:
            now = wall_clock()
            values["http.request.timestamp.sec"] = int(now)
            values["http.request.timestamp.msec"] = int(now * 1000) % 1000
        if plan.extra:
            # request_fields' extra fields (pipeline/builtin/waf.py), which override computed values.
            values["cf.ray_id"] = ctx.ray_id.encode()
            if ctx.tls_version:
                values["cf.tls_version"] = ctx.tls_version.encode()
            if ctx.route is not None:
                values["cf.zone.name"] = ctx.route.zone_name.encode()


def field_values(fields: dict[str, Any], make: Callable[[], RequestFields]) -> FieldValues:
    """``FieldValues(None, make)`` holding what :meth:`FieldFiller.fill_plain` filled."""
    values: FieldValues = _new(FieldValues)
    _set(values, "_request", make)
    values.update(fields)
    return values
