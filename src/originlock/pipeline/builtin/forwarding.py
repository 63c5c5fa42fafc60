"""Phase ORIGIN_REQUEST and RESPONSE_HEADERS: header rewriting in both directions.

Towards the origin (Cloudflare's documented request headers): Host preserved; ``X-Forwarded-For``
appended with the visitor address; ``X-Forwarded-Proto``, ``CF-Connecting-IP``, ``CF-Visitor`` and
``CF-Ray`` set by the edge (visitor-sent copies are dropped so they cannot be spoofed); hop-by-hop fields
(RFC 9110 §7.6.1, plus any named in ``Connection``) and ``Expect`` removed (the edge answers
``100-continue`` itself). Body framing is re-stated by the edge: ``Transfer-Encoding: chunked`` or the
original ``Content-Length``.

Towards the visitor: hop-by-hop fields removed, framing re-stated, ``CF-Ray`` added.

No head written here holds CR, LF or NUL in a field (the second line of defence against header
injection, after the API's validation): fields copied from a parsed message were checked by the strict
parser (``add_parsed_field``); everything else, such as an Origin Rule's ``host_header``, is checked as it
is written (``add_field`` / ``check_field`` raise ``UnsafeHeaderValue``, answered 502 before anything
reaches the origin). A ``Connection`` field that names ``Host`` is refused (400).

Each direction exists twice, on purpose: ``origin_request_headers`` / ``visitor_response_headers`` return
the fields as a list (the reference, and the path for the rare message whose ``Connection`` field names
other fields), and ``origin_request_head`` / ``visitor_response_head`` write the same fields straight
into the serialised head, which is what the edge sends. The second form builds no list of fields and no
tuples per request (docs/performance.md, step 6); a property test asserts that both give the same bytes
for any message.
"""

from __future__ import annotations

from typing import Final

from originlock.cache import BoundedCache
from originlock.errors import MalformedRequest
from originlock.proto.events import Headers, NameFilter, RequestReceived, ResponseReceived, lower_name
from originlock.proto.serialize import (
    HOP_BY_HOP,
    add_parsed_field,
    check_field,
    request_head,
    response_head,
    start_request,
    start_response,
)

__all__ = [
    "DROP_TO_VISITOR",
    "origin_request_head",
    "origin_request_headers",
    "override_host",
    "visitor_response_head",
    "visitor_response_headers",
]

_EDGE_SET: Final = frozenset({b"x-forwarded-proto", b"cf-connecting-ip", b"cf-visitor", b"cf-ray", b"expect"})
#: Everything the origin request never carries as received: one set lookup per field on the hot path.
_NOT_FORWARDED: Final = HOP_BY_HOP | _EDGE_SET | {b"content-length"}
#: The names ``origin_request_head`` treats specially, without and with a Host override.
_REQUEST_NAMES: Final = NameFilter(_NOT_FORWARDED | {b"x-forwarded-for"})
_REQUEST_NAMES_HOST: Final = _REQUEST_NAMES | NameFilter([b"host"])
#: ``X-Forwarded-Proto`` and ``CF-Visitor`` depend only on the visitor's scheme: built once.
_SCHEME_FIELDS: Final = {
    scheme: ((b"X-Forwarded-Proto", scheme.encode()), (b"CF-Visitor", f'{{"scheme":"{scheme}"}}'.encode()))
    for scheme in ("http", "https")
}


#: ``Connection`` value -> the names it lists that are not hop-by-hop anyway. Peers repeat a few values
#: (nginx: "keep-alive"); a plain dict, since calling an ``lru_cache`` wrapper costs twice a lookup.
_TOKENS: Final = BoundedCache[bytes, frozenset[bytes]](256)
_NONE_NAMED: Final[frozenset[bytes]] = frozenset()
#: ``Connection: close``: what an origin that closes after each response sends (nginx's
#: ``keepalive_timeout 0``, a new origin connection per request). ``close`` is a connection option; it names
#: a field only in a response that has one called ``close``.
_CLOSE_NAMED: Final[frozenset[bytes]] = frozenset({b"close"})


def _named_tokens(connection: bytes) -> frozenset[bytes]:
    """Field names listed in ``Connection`` (joined values) that are not hop-by-hop anyway.

    The fields are collected in the main pass and only this rare remainder needs a second pass: a
    separate pass over all fields for ``Connection`` first was ≈ 3 % of edge samples (docs/performance.md).
    """
    if connection == b"keep-alive":  # what nginx and browsers send: no hash of a new bytes object for it
        return _NONE_NAMED
    named = _TOKENS.get(connection)
    if named is None:
        named = _TOKENS.put(connection, frozenset(t.strip().lower() for t in connection.split(b",")) - HOP_BY_HOP)
    return named


def origin_request_headers(request: RequestReceived, *, client_ip: str, scheme: str, ray_id: str) -> Headers:
    """The header fields sent to the origin for ``request``."""
    out: Headers = []
    forwarded_for: bytes | None = None
    connection: bytes | None = None
    for field in request.headers:
        lower = lower_name(field[0])
        if lower in _NOT_FORWARDED:
            if lower == b"connection":
                connection = field[1] if connection is None else connection + b"," + field[1]
            continue
        if lower == b"x-forwarded-for":
            value = field[1]
            forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            continue
        out.append(field)
    if connection is not None:
        named = _named_tokens(connection)
        if named:
            if b"host" in named:
                # Dropping it would send the origin a request without Host (the origin picks a default
                # virtual host); keeping it would ignore the visitor's Connection. Neither: refused.
                raise MalformedRequest("the Connection header field names Host")
            out = [(name, value) for name, value in out if lower_name(name) not in named]
            if b"x-forwarded-for" in named:
                forwarded_for = None
    ip = client_ip.encode()
    out.append((b"X-Forwarded-For", forwarded_for + b", " + ip if forwarded_for else ip))
    proto, visitor = _SCHEME_FIELDS[scheme]
    out.append(proto)
    out.append((b"CF-Connecting-IP", ip))
    out.append(visitor)
    out.append((b"CF-Ray", ray_id.encode()))
    if request.body == "chunked":
        out.append((b"Transfer-Encoding", b"chunked"))
    elif request.body == "length":
        length = request.header(b"content-length")
        assert length is not None
        out.append((b"Content-Length", length))
    return out


def override_host(headers: Headers, host: str) -> Headers:
    """``headers`` with the Host field replaced by ``host`` (an Origin Rules ``host_header`` override)."""
    check_field(b"Host", host.encode())
    out = [(name, value) for name, value in headers if name.lower() != b"host"]
    return [(b"Host", host.encode()), *out]


#: Per visitor address and scheme: the forwarded fields after the visitor's own, serialised once (with and
#: without ``X-Forwarded-For``, which a visitor-sent value extends). The address string is the same object
#: for every request of a connection, so its hash is cached; bounded, since visitors choose addresses.
_TAILS: Final = {scheme: BoundedCache[str, tuple[bytes, bytes]](4096) for scheme in ("http", "https")}


class _LastTail:
    """The tail handed out last, with its address and scheme (compared by identity: a connection's own
    strings, the same objects for each of its requests); a wrong guess only costs the cache's lookup. One
    tuple, read and replaced whole: module state is shared by every edge loop of the process (tests run
    several in threads), and a reader must never pair one address with another address's tail."""

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: tuple[str | None, str, tuple[bytes, bytes]] = (None, "", (b"", b""))  # None: no address


_LAST_TAIL: Final = _LastTail()


def _forwarded_tail(client_ip: str, scheme: str) -> tuple[bytes, bytes]:
    entry = _LAST_TAIL.entry
    if entry[0] is client_ip and entry[1] is scheme:
        return entry[2]
    tails = _TAILS[scheme]
    tail = tails.get(client_ip)
    if tail is None:
        ip = client_ip.encode()
        (_, proto), (_, visitor) = _SCHEME_FIELDS[scheme]
        # CF-Ray's name ends the tail: its value follows as the next part (one part fewer to join).
        rest = b"X-Forwarded-Proto: %s\r\nCF-Connecting-IP: %s\r\nCF-Visitor: %s\r\nCF-Ray: " % (proto, ip, visitor)
        tail = (b"X-Forwarded-For: %s\r\n%s" % (ip, rest), rest)
        tails.put(client_ip, tail)
    _LAST_TAIL.entry = (client_ip, scheme, tail)
    return tail


def origin_request_head(
    request: RequestReceived, *, client_ip: str, scheme: str, ray_id: str, host: str | None = None
) -> bytes:
    """The request head sent to the origin: ``request_head`` of :func:`origin_request_headers` (with
    :func:`override_host` when ``host`` is given), built in one pass."""
    parts = start_request(request.method, request.target)
    request_line = len(parts)  # 3 parts or 4 (start_request writes GET's in fewer)
    forwarded_for: bytes | None = None
    connection: bytes | None = None
    special = _REQUEST_NAMES if host is None else _REQUEST_NAMES_HOST
    for field in request.headers:
        name = field[0]
        if not special.may_be(name):
            add_parsed_field(parts, name, field[1])
            continue
        lower = lower_name(name)
        if lower in _NOT_FORWARDED:
            if lower == b"connection":
                connection = field[1] if connection is None else connection + b"," + field[1]
            continue
        if lower == b"x-forwarded-for":
            value = field[1]
            forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            continue
        if host is not None and lower == b"host":
            continue
        add_parsed_field(parts, name, field[1])
    if connection is not None and _names_a_field(_named_tokens(connection), request.headers):
        # Rare: fields named in Connection must go too; the list-based reference handles it. ``close`` alone
        # (every request of a visitor that closes after it) names no field unless one is called so.
        headers = origin_request_headers(request, client_ip=client_ip, scheme=scheme, ray_id=ray_id)
        return request_head(request.method, request.target, headers if host is None else override_host(headers, host))
    if host is not None:
        # An Origin Rule's host_header: configuration, not parsed, so checked (CR/LF would smuggle a request).
        value = host.encode()
        check_field(b"Host", value)
        parts[request_line:request_line] = (b"Host: ", value, b"\r\n")  # first, as override_host puts it
    with_xff, without_xff = _forwarded_tail(client_ip, scheme)
    if forwarded_for:
        add_parsed_field(parts, b"X-Forwarded-For", forwarded_for + b", " + client_ip.encode())
        parts.append(without_xff)
    else:
        parts.append(with_xff)
    parts.append(ray_id.encode())
    if request.body == "chunked":
        parts.append(b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    elif request.body == "length":
        length = request.header(b"content-length")
        assert length is not None
        parts.append(b"\r\nContent-Length: ")
        parts.append(length)
        parts.append(b"\r\n\r\n")
    else:
        parts.append(b"\r\n\r\n")  # the line's end and the head's in one part: every part costs the join
    return b"".join(parts)


#: The origin's fields a visitor never gets (lower-case): hop-by-hop ones and the origin's own CF-Ray.
DROP_TO_VISITOR: Final = HOP_BY_HOP | {b"cf-ray"}
_DROP_CHUNKED: Final = DROP_TO_VISITOR | {b"content-length"}
_DROP_NAMES: Final = NameFilter(DROP_TO_VISITOR)
_DROP_NAMES_CHUNKED: Final = NameFilter(_DROP_CHUNKED)


def visitor_response_headers(response: ResponseReceived, *, ray_id: str, chunked: bool, close: bool) -> Headers:
    """The header fields sent to the visitor for the origin's ``response``.

    ``chunked``: the edge re-chunks the body (origin sent chunked or read-until-close to an HTTP/1.1
    visitor). ``Content-Length`` is kept otherwise (also for HEAD/304, where it describes the entity).
    """
    out: Headers = []
    connection: bytes | None = None
    drop = _DROP_CHUNKED if chunked else DROP_TO_VISITOR
    for field in response.headers:
        lower = lower_name(field[0])
        if lower in drop:
            if lower == b"connection":
                connection = field[1] if connection is None else connection + b"," + field[1]
            continue
        out.append(field)
    if connection is not None:
        named = _named_tokens(connection)
        if named:
            out = [(name, value) for name, value in out if lower_name(name) not in named]
    if chunked:
        out.append((b"Transfer-Encoding", b"chunked"))
    if close:
        out.append((b"Connection", b"close"))
    out.append((b"CF-Ray", ray_id.encode()))
    return out


def visitor_response_head(
    response: ResponseReceived, *, ray_id: str, chunked: bool, close: bool, keep_alive_1_0: bool = False
) -> bytes:
    """The response head sent to the visitor: ``response_head`` of :func:`visitor_response_headers`, plus
    ``Connection: keep-alive`` for an HTTP/1.0 visitor whose connection stays open, built in one pass."""
    parts = start_response(response.status, response.reason)
    drop = _DROP_CHUNKED if chunked else DROP_TO_VISITOR
    droppable = _DROP_NAMES_CHUNKED if chunked else _DROP_NAMES
    raw = response.raw_fields
    if raw and response.headers is response.raw_of:
        connection = _copy_raw_fields(parts, raw, response.headers, drop, droppable)
    else:
        connection = _add_fields(parts, response.headers, drop, droppable)
    if connection is not None and _names_a_field(_named_tokens(connection), response.headers):
        headers = visitor_response_headers(response, ray_id=ray_id, chunked=chunked, close=close)
        if keep_alive_1_0:
            headers.append((b"Connection", b"keep-alive"))
        return response_head(response.status, headers, response.reason)
    if chunked:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    if close:
        parts.append(b"Connection: close\r\n")
    parts.append(b"CF-Ray: ")
    parts.append(ray_id.encode())
    parts.append(b"\r\nConnection: keep-alive\r\n\r\n" if keep_alive_1_0 else b"\r\n\r\n")
    return b"".join(parts)


def _names_a_field(named: frozenset[bytes], headers: Headers) -> bool:
    """Whether ``Connection`` names fields to remove (then the general path removes them). ``close`` alone
    only when a field is called so: otherwise every response of an origin that closes its connections took
    the general path, which checks each field again (≈ 40k instructions per request, docs/performance.md,
    issue 11, dial3)."""
    if not named:
        return False
    if named != _CLOSE_NAMED:
        return True
    for field in headers:
        name = field[0]
        if len(name) == 5 and name.lower() == b"close":
            return True
    return False


def _add_fields(parts: list[bytes], headers: Headers, drop: frozenset[bytes], droppable: NameFilter) -> bytes | None:
    """The fields not in ``drop``, one by one; returns the joined ``Connection`` values (None: none)."""
    connection: bytes | None = None
    for field in headers:
        name = field[0]
        if not droppable.may_be(name):
            add_parsed_field(parts, name, field[1])
            continue
        lower = b"connection" if name == b"Connection" else lower_name(name)  # see _framing in proto/http1.py
        if lower in drop:
            if lower == b"connection":
                connection = field[1] if connection is None else connection + b"," + field[1]
            continue
        add_parsed_field(parts, name, field[1])
    return connection


def _copy_raw_fields(
    parts: list[bytes], raw: bytes, headers: Headers, drop: frozenset[bytes], droppable: NameFilter
) -> bytes | None:
    """What :func:`_add_fields` writes, as slices of the origin's field lines ``raw`` (each line is
    ``name: value\\r\\n``, see ``ResponseReceived.raw_fields``): the runs of kept lines between dropped ones,
    usually one or two parts where field-by-field serialising gave four per field."""
    connection: bytes | None = None
    at = kept = 0  # where the current line starts; where the run of kept lines starts
    for field in headers:
        name = field[0]
        end = at + len(name) + len(field[1]) + 4
        if droppable.may_be(name):
            lower = b"connection" if name == b"Connection" else lower_name(name)  # see _framing in proto/http1.py
            if lower in drop:
                if lower == b"connection":
                    connection = field[1] if connection is None else connection + b"," + field[1]
                if kept < at:
                    parts.append(raw[kept:at])
                kept = end
        at = end
    if kept == 0:
        parts.append(raw)
    elif kept < at:
        parts.append(raw[kept:at])
    return connection
