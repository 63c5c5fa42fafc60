"""Phase ERROR: an :class:`~originlock.errors.EdgeError` becomes the page the visitor sees.

Mirrors Cloudflare's 5xx/1xxx pages: the code, its title, the ray id, and what the site owner should
check. Plain HTML, no external assets.
"""

from __future__ import annotations

import html

from originlock.errors import EdgeError, ErrorSource
from originlock.pipeline.decision import Respond

__all__ = ["error_response", "page"]

#: code -> (title, what the site owner should check)
_ADVICE: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The request was malformed or ambiguous and was not forwarded."),
    414: ("URI too long", "The request URL is longer than 16 KiB."),
    501: ("Not implemented", "The request uses a transfer coding other than chunked, which the edge does not support."),
    502: (
        "Bad gateway",
        "The edge refused to send the origin a header holding CR, LF or NUL: check the zone's Origin Rules "
        "(host_header) and custom responses.",
    ),
    431: ("Request header fields too large", "The request headers are larger than 32 KiB."),
    503: (
        "Service temporarily unavailable",
        "The edge reached one of its resource limits (connections to this origin, open files) and did not "
        "forward the request; it can be repeated. If this persists, raise --max-origin-connections or the "
        "process's open-files limit, or look for slow clients holding connections.",
    ),
    520: (
        "Web server is returning an unknown error",
        "The origin returned an empty, unknown or unexpected response: check the origin's error log "
        "for crashes, and that responses have a status line and headers under 128 KiB.",
    ),
    521: (
        "Web server is down",
        "The origin refused the connection: check that the web server is running and that it accepts "
        "connections from the edge's addresses on the origin port.",
    ),
    522: (
        "Connection timed out",
        "The origin did not answer the TCP connection attempt: check that it is up, not overloaded, and "
        "that no firewall drops the edge's packets.",
    ),
    523: ("Origin is unreachable", "There is no route to the origin address: check the DNS record's content."),
    524: (
        "A timeout occurred",
        "The origin accepted the connection but did not send a response in time: check for long-running "
        "requests on the origin, or raise the edge's read timeout.",
    ),
    525: (
        "SSL handshake failed",
        "The origin rejected or did not complete the TLS handshake — is it requiring a client certificate "
        "the edge does not have? Check the Authenticated Origin Pulls configuration for this hostname, that "
        "the origin trusts the CA that issued the edge's client certificate, and that the origin serves TLS "
        "on the origin port.",
    ),
    526: (
        "Invalid SSL certificate",
        "The SSL mode is Full (strict) and the origin certificate could not be validated: it must be "
        "unexpired, issued by a publicly trusted CA or the deployment's origin CA, name this hostname, and "
        "not be a revoked Origin CA certificate.",
    ),
    1001: (
        "DNS resolution error",
        "This hostname is not served by this edge: add a proxied DNS record for it to a zone.",
    ),
    1016: (
        "Origin DNS error",
        "The hostname's CNAME target could not be resolved: check the DNS record's content.",
    ),
}


def page(code: int, ray_id: str, host: str, detail: str = "") -> bytes:
    """The HTML body of an error page."""
    title, advice = _ADVICE.get(code, ("Error", "An unexpected error occurred at the edge."))
    label = f"Error {code}"
    esc = html.escape
    extra = f'<p class="detail">{esc(detail)}</p>\n' if detail else ""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{esc(host or 'originlock')} | {label}: {esc(title)}</title></head>\n<body>\n"
        f"<h1>{label}</h1>\n<h2>{esc(title)}</h2>\n"
        f"<p>What should the site owner check? {esc(advice)}</p>\n{extra}"
        f"<p>Ray ID: <code>{esc(ray_id)}</code> &middot; Host: {esc(host)} &middot; originlock</p>\n"
        "</body></html>\n"
    ).encode()


def error_response(error: EdgeError, ray_id: str, host: str) -> Respond:
    """The response for ``error``; downstream protocol errors also close the connection."""
    detail = error.message if error.source is not ErrorSource.ORIGIN else ""
    body = page(error.code, ray_id, host, detail)
    headers = [
        (b"Content-Type", b"text/html; charset=utf-8"),
        (b"Content-Length", str(len(body)).encode()),
        (b"Cache-Control", b"no-store"),
        (b"CF-Ray", ray_id.encode()),
    ]
    return Respond(error.status_hint, headers, body, close=error.source is ErrorSource.DOWNSTREAM)
