"""HTTP/1.1 messages back to bytes (RFC 9112 §3, §4, §7.1). Pure; the caller decides framing."""

from __future__ import annotations

from http import HTTPStatus

from originlock.proto.events import Headers

__all__ = ["HOP_BY_HOP", "LAST_CHUNK", "chunk", "reason_phrase", "request_head", "response_head"]

#: Hop-by-hop fields (RFC 9110 §7.6.1) plus the legacy ones proxies also drop (nginx, Pingora).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

#: Zero-length chunk ending a chunked body without trailers.
LAST_CHUNK = b"0\r\n\r\n"

_EXTRA_REASONS = {
    520: b"Unknown Error",
    521: b"Web Server Is Down",
    522: b"Connection Timed Out",
    523: b"Origin Is Unreachable",
    524: b"A Timeout Occurred",
    525: b"SSL Handshake Failed",
    526: b"Invalid SSL Certificate",
    530: b"Origin DNS Error",
}


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase, Cloudflare's for 52x/530, else empty."""
    extra = _EXTRA_REASONS.get(status)
    if extra is not None:
        return extra
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


_FIELD_SEP = b": ".join
_LINE_SEP = b"\r\n".join


def _fields(headers: Headers) -> bytes:
    """The field lines, each ending in CRLF. Joined by ``bytes.join`` mapped over the (name, value) tuples,
    so the loop runs in C: a list comprehension with concatenations was ~2 % of edge CPU (two heads per
    proxied request; docs/performance.md step 2)."""
    if not headers:
        return b""
    return _LINE_SEP(map(_FIELD_SEP, headers)) + b"\r\n"


def request_head(method: bytes, target: bytes, headers: Headers) -> bytes:
    """``METHOD target HTTP/1.1`` plus fields and the empty line."""
    return b"%s %s HTTP/1.1\r\n%s\r\n" % (method, target, _fields(headers))


def response_head(status: int, headers: Headers, reason: bytes | None = None, version: bytes = b"1.1") -> bytes:
    """Status line plus fields and the empty line."""
    phrase = reason if reason else reason_phrase(status)
    return b"HTTP/%s %d %s\r\n%s\r\n" % (version, status, phrase, _fields(headers))


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1); never call with empty data (that ends the body)."""
    return b"%x\r\n" % len(data) + data + b"\r\n"
