"""The edge's one error tree: every failure records where it came from, whether a retry may help, and
which HTTP status the visitor should see.

::

    EdgeError(source, retryable, status_hint, code)
    ├── DownstreamError            source=DOWNSTREAM: the visitor sent something we refuse
    │   ├── MalformedRequest       400, connection closed (ambiguous framing, bad syntax)
    │   ├── HeadersTooLarge        431
    │   ├── UriTooLong             414
    │   └── UnsupportedTransferCoding  501 (a transfer coding other than chunked, as nginx)
    ├── UnsafeHeaderValue          source=INTERNAL, 502: a head the edge was about to send would hold
    │                              CR, LF or NUL (a configuration value that slipped past validation)
    ├── EdgeOverloaded             503: an edge resource limit was reached (origin connection cap, file
    │                              descriptors); nothing was sent to the origin
    ├── OriginSniUnusable          525: the SNI an Origin Rule (or the snapshot) gives cannot be sent
    ├── RoutingError               source=INTERNAL: the request cannot be routed
    │   ├── UnknownHostname        530 + Cloudflare error 1001
    │   └── OriginDnsError         530 + Cloudflare error 1016 (CNAME target does not resolve)
    └── OriginError                source=ORIGIN: talking to the origin failed
        ├── OriginBadResponse      520 (reset, EOF, unparsable response)
        ├── OriginRefused          521 (ECONNREFUSED)
        ├── OriginConnectTimeout   522
        ├── OriginUnreachable      523 (EHOSTUNREACH / ENETUNREACH)
        ├── OriginTimeout          524 (no response within the read timeout)
        ├── OriginHandshakeFailed  525 (TLS handshake failed or alerted, incl. client certificate refused)
        └── OriginCertInvalid      526 (strict modes only: origin certificate did not validate or is a
                                   revoked Origin CA certificate)

Foreign exceptions (``ssl.SSLError``, ``OSError``, ``httptools.HttpParserError``, timeouts) are translated
at exactly one boundary per layer through :func:`map_errors`, with ``raise ... from exc``
(httpcore's ``map_exceptions``). Codes 520-526 and 1001/1016 mirror Cloudflare's (spec §7).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = [
    "ClientCertUnusable",
    "DownstreamError",
    "EdgeError",
    "EdgeOverloaded",
    "ErrorSource",
    "HeadersTooLarge",
    "MalformedRequest",
    "OriginBadResponse",
    "OriginCertInvalid",
    "OriginConnectTimeout",
    "OriginDnsError",
    "OriginError",
    "OriginHandshakeFailed",
    "OriginRefused",
    "OriginSniUnusable",
    "OriginTimeout",
    "OriginUnreachable",
    "RoutingError",
    "UnknownHostname",
    "UnsafeHeaderValue",
    "UnsupportedTransferCoding",
    "UriTooLong",
    "map_errors",
]


class ErrorSource(enum.Enum):
    DOWNSTREAM = "downstream"
    ORIGIN = "origin"
    INTERNAL = "internal"


class EdgeError(Exception):
    """Base of every error the edge turns into a response or a closed connection."""

    source: ErrorSource = ErrorSource.INTERNAL
    #: True when the same request may be retried on a fresh origin connection.
    retryable: bool = False
    #: The status the visitor sees.
    status_hint: int = 500
    #: Cloudflare's error code shown on the page (e.g. 1016), or the status itself for 52x.
    code: int = 500

    def __init__(self, message: str = "", *, retryable: bool | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        if retryable is not None:
            self.retryable = retryable

    @property
    def message(self) -> str:
        return str(self.args[0])


class DownstreamError(EdgeError):
    source = ErrorSource.DOWNSTREAM
    status_hint = 400
    code = 400


class MalformedRequest(DownstreamError):
    """The request is malformed or its framing is ambiguous."""


class HeadersTooLarge(DownstreamError):
    """The request header block is larger than the edge accepts."""

    status_hint = 431
    code = 431


class UriTooLong(DownstreamError):
    """The request URL is longer than the edge accepts."""

    status_hint = 414
    code = 414


class UnsupportedTransferCoding(DownstreamError):
    """The request uses a transfer coding other than chunked."""

    status_hint = 501
    code = 501


class UnsafeHeaderValue(EdgeError):
    """A header field the edge was about to send contains CR, LF or NUL.

    Only configuration can put such a value there (an Origin Rule's ``host_header``, a custom response):
    the visitor's own fields went through the strict parser, which refuses them. Nothing is sent; the
    visitor gets 502 (the edge, as a gateway, could not make a valid request) and the connection to the
    origin is never opened or written to, so it cannot be poisoned.
    """

    status_hint = 502
    code = 502


class RoutingError(EdgeError):
    status_hint = 530


class UnknownHostname(RoutingError):
    """The hostname is not served by this edge (Cloudflare error 1001)."""

    code = 1001


class OriginDnsError(RoutingError):
    """The origin's CNAME target could not be resolved (Cloudflare error 1016)."""

    code = 1016


class OriginError(EdgeError):
    source = ErrorSource.ORIGIN
    status_hint = 502
    code = 502


class OriginBadResponse(OriginError):
    """The origin returned an empty, unknown or unexpected response."""

    status_hint = code = 520


class OriginRefused(OriginError):
    """The origin refused the connection."""

    status_hint = code = 521


class OriginConnectTimeout(OriginError):
    """The origin did not answer the TCP connection attempt in time."""

    status_hint = code = 522


class OriginUnreachable(OriginError):
    """There is no route to the origin address."""

    status_hint = code = 523


class OriginTimeout(OriginError):
    """The origin accepted the request but did not respond in time."""

    status_hint = code = 524


class OriginHandshakeFailed(OriginError):
    """The TLS handshake with the origin failed."""

    status_hint = code = 525


class ClientCertUnusable(EdgeError):
    """The client certificate chosen for the origin cannot be used (expired, refused by the FIPS profile...).

    A configuration problem of the edge, not an origin failure: answered 525 like Cloudflare's failed
    handshake, and, unlike origin errors, the page says why, since the site owner must act on it.
    """

    source = ErrorSource.INTERNAL
    status_hint = code = 525


class OriginSniUnusable(EdgeError):
    """The server name to send to the origin cannot be used (a NUL byte, a label over 63 characters...).

    A configuration problem (Origin Rules' ``sni.value`` or ``host_header``), found before any byte is sent:
    525 like a handshake that could not be made, and the page says why, as for ``ClientCertUnusable``.
    """

    source = ErrorSource.INTERNAL
    status_hint = code = 525


class EdgeOverloaded(EdgeError):
    """An edge resource limit was reached (origin connections per origin, file descriptors).

    503 Service Unavailable, as nginx's ``limit_conn`` answers and as RFC 9110 §15.6.4 describes a
    temporary overload; nothing reached the origin, so the request may be repeated.
    """

    source = ErrorSource.INTERNAL
    status_hint = code = 503


class OriginCertInvalid(OriginError):
    """The origin's certificate could not be validated (or was revoked)."""

    status_hint = code = 526


ErrorMap = Mapping[type[BaseException], type[EdgeError]]


@contextmanager
def map_errors(mapping: ErrorMap) -> Iterator[None]:
    """Translate foreign exceptions into the edge's tree (first matching entry wins, in order).

    ``EdgeError`` passes through unchanged; unmapped exceptions propagate as they are.
    """
    try:
        yield
    except EdgeError:
        raise
    except Exception as exc:
        for foreign, ours in mapping.items():
            if isinstance(exc, foreign):
                raise ours(f"{ours.__doc__ or ours.__name__} ({type(exc).__name__}: {exc})") from exc
        raise
