"""Phase ROUTE: Host -> proxied hostname -> :class:`~originlock.snapshot.model.Route`.

The hostname comes from the single Host field; for an absolute-form request-target the parser has already
put the target's authority there (RFC 9112 §3.2.2, ``proto/target.py``). An unknown hostname is
Cloudflare's error 1001.
"""

from __future__ import annotations

from typing import Final

from originlock.cache import BoundedCache
from originlock.errors import MalformedRequest, UnknownHostname
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import CONTINUE, Decision
from originlock.proto.events import RequestReceived, lower_name
from originlock.proto.target import split_absolute

__all__ = ["host_of", "on_route"]


def _strip_port(authority: bytes) -> bytes:
    if authority.startswith(b"["):
        end = authority.find(b"]")
        return authority[: end + 1] if end > 0 else authority
    colon = authority.rfind(b":")
    return authority[:colon] if colon >= 0 else authority


#: Host field value -> hostname, for origin-form requests with one Host field (nearly all): the
#: normalisation below was ≈ 9 % of the pure request path in process (docs/performance.md step 4).
#: Bounded because visitors choose the values; only values that normalise without error are stored.
_HOSTS: Final = BoundedCache[bytes, str](1024)


def host_of(request: RequestReceived) -> str:
    """The hostname the visitor asked for, lower-case, without port or trailing dot.

    Raises:
        MalformedRequest: no Host in HTTP/1.1, several Host fields, or an unusable value.
    """
    target = request.target
    if target[:1] == b"/":
        found: bytes | None = None
        for name, value in request.headers:
            # The usual spelling compared as it is: lower_name's cache lookup hashes the parser's new bytes.
            if len(name) == 4 and (name == b"Host" or lower_name(name) == b"host"):
                if found is not None:
                    return _host_of(request)  # several Host fields: _host_of says what is wrong
                found = value
        if found is not None:
            # The value normalised last, compared as it is (the next request of a connection usually sends
            # the same): the cache's lookup hashes the parser's new bytes object.
            last = _LAST_HOST
            if found == last.value:
                return last.host
            host = _HOSTS.get(found)
            if host is None:
                host = _HOSTS.put(found, _host_of(request))
            last.value, last.host = found, host
            return host
    return _host_of(request)


class _LastHost:
    """The last Host value normalised without error, and its hostname."""

    __slots__ = ("host", "value")

    def __init__(self) -> None:
        self.value: bytes | None = None
        self.host = ""


_LAST_HOST: Final = _LastHost()


def _host_of(request: RequestReceived) -> str:
    # The parser has already made every target origin-form (its authority replaced Host); a request built
    # by other means is read the same way, by the one parser of request-targets.
    absolute = split_absolute(request.target)
    authority = absolute[0] if absolute is not None else None
    hosts = [value for name, value in request.headers if name.lower() == b"host"]
    if len(hosts) > 1:
        raise MalformedRequest("more than one Host header field")
    if authority is None:
        if not hosts:
            if request.version == b"1.1":
                raise MalformedRequest("missing Host header field")
            raise UnknownHostname("the request names no hostname")
        authority = hosts[0].strip()
    if b"@" in authority:
        raise MalformedRequest("userinfo in the request authority")
    host = _strip_port(authority).rstrip(b".").lower()
    if not host:
        raise MalformedRequest("empty Host header field")
    try:
        return host.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedRequest("non-ASCII Host header field") from None


def on_route(request: RequestReceived, ctx: RequestContext) -> Decision:
    ctx.host = host_of(request)
    route = ctx.snapshot.route_for(ctx.host)
    if route is None:
        raise UnknownHostname(f"{ctx.host} is not served by this edge")
    ctx.route = route
    return CONTINUE
