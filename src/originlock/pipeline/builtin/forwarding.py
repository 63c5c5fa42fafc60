"""Phase ORIGIN_REQUEST and RESPONSE_HEADERS: header rewriting in both directions.

Towards the origin (Cloudflare's documented request headers): Host preserved; ``X-Forwarded-For``
appended with the visitor address; ``X-Forwarded-Proto``, ``CF-Connecting-IP``, ``CF-Visitor`` and
``CF-Ray`` set by the edge (visitor-sent copies are dropped so they cannot be spoofed); hop-by-hop fields
(RFC 9110 §7.6.1, plus any named in ``Connection``) and ``Expect`` removed (the edge answers
``100-continue`` itself). Body framing is re-stated by the edge: ``Transfer-Encoding: chunked`` or the
original ``Content-Length``.

Towards the visitor: hop-by-hop fields removed, framing re-stated, ``CF-Ray`` added.
"""

from __future__ import annotations

from originlock.proto.events import Headers, RequestReceived, ResponseReceived
from originlock.proto.serialize import HOP_BY_HOP

__all__ = ["origin_request_headers", "override_host", "visitor_response_headers"]

_EDGE_SET = frozenset({b"x-forwarded-proto", b"cf-connecting-ip", b"cf-visitor", b"cf-ray", b"expect"})
_VISITOR_JSON = {"http": b'{"scheme":"http"}', "https": b'{"scheme":"https"}'}


def _connection_tokens(headers: Headers) -> frozenset[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens)


def origin_request_headers(request: RequestReceived, *, client_ip: str, scheme: str, ray_id: str) -> Headers:
    """The header fields sent to the origin for ``request``."""
    named = _connection_tokens(request.headers)
    out: Headers = []
    forwarded_for: bytes | None = None
    for name, value in request.headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in named or lower in _EDGE_SET or lower == b"content-length":
            continue
        if lower == b"x-forwarded-for":
            forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            continue
        out.append((name, value))
    ip = client_ip.encode()
    out.append((b"X-Forwarded-For", forwarded_for + b", " + ip if forwarded_for else ip))
    out.append((b"X-Forwarded-Proto", scheme.encode()))
    out.append((b"CF-Connecting-IP", ip))
    out.append((b"CF-Visitor", _VISITOR_JSON[scheme]))
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
    out = [(name, value) for name, value in headers if name.lower() != b"host"]
    return [(b"Host", host.encode()), *out]


def visitor_response_headers(response: ResponseReceived, *, ray_id: str, chunked: bool, close: bool) -> Headers:
    """The header fields sent to the visitor for the origin's ``response``.

    ``chunked``: the edge re-chunks the body (origin sent chunked or read-until-close to an HTTP/1.1
    visitor). ``Content-Length`` is kept otherwise (also for HEAD/304, where it describes the entity).
    """
    named = _connection_tokens(response.headers)
    out: Headers = []
    for name, value in response.headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in named or lower == b"cf-ray":
            continue
        if chunked and lower == b"content-length":
            continue
        out.append((name, value))
    if chunked:
        out.append((b"Transfer-Encoding", b"chunked"))
    if close:
        out.append((b"Connection", b"close"))
    out.append((b"CF-Ray", ray_id.encode()))
    return out
