"""The answer to a request the WAF refused: the rule's custom response, or Cloudflare-like 1020/1015 pages.

Without a custom ``response`` the page follows the visitor's ``Accept`` header (spec §2.4): the first
media type we know among HTML, JSON, XML and plain text wins; anything else gets HTML. The page carries
the Cloudflare error code (1020 "Access denied" for firewall rules, 1015 "You are being rate limited"
for rate-limit rules) and the ray id, so a visitor can quote it to the site owner.

Challenge actions: a self-hosted edge has no challenge platform, so they are answered like ``block``
(403) and marked with ``cf-mitigated: challenge``, the header Cloudflare puts on challenge pages so
scripts can tell a challenge from an origin error (docs/waf.md).
"""

from __future__ import annotations

import html
import json

from originlock.pipeline.decision import Respond
from originlock.proto.events import Headers
from originlock.waf import Action, Phase, Verdict

__all__ = ["block_response"]

_CHALLENGES = frozenset({Action.CHALLENGE, Action.JS_CHALLENGE, Action.MANAGED_CHALLENGE})
_TITLES = {1020: "Access denied", 1015: "You are being rate limited"}
_DETAILS = {
    1020: "The site owner has set a firewall rule that blocks this request.",
    1015: "The site owner has limited how often this resource can be requested; try again later.",
}
_FORMATS = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/plain": "plain",
}


def _format(accept: bytes | None) -> str:
    for item in (accept or b"").decode("latin-1").split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media in _FORMATS:
            return _FORMATS[media]
    return "html"


def _default_body(fmt: str, code: int, status: int, ray_id: str, host: str, note: str) -> tuple[bytes, bytes]:
    title, detail = _TITLES[code], _DETAILS[code] + note
    if fmt == "json":
        doc = {"error_code": code, "title": title, "status": status, "detail": detail, "ray_id": ray_id, "host": host}
        return json.dumps(doc).encode(), b"application/json"
    if fmt == "xml":
        esc = html.escape
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<error><code>{code}</code><title>{esc(title)}</title>'
            f"<status>{status}</status><detail>{esc(detail)}</detail><ray_id>{esc(ray_id)}</ray_id></error>\n"
        )
        return xml.encode(), b"application/xml"
    if fmt == "plain":
        return f"error code: {code}\n{title}\n{detail}\nRay ID: {ray_id}\n".encode(), b"text/plain; charset=utf-8"
    esc = html.escape
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{esc(title)} | {esc(host)} | originlock</title></head>\n<body>\n"
        f"<h1>Error {code}</h1>\n<h2>{esc(title)}</h2>\n<p>{esc(detail)}</p>\n"
        f"<p>Ray ID: <code>{esc(ray_id)}</code> &middot; Host: {esc(host)} &middot; originlock</p>\n"
        "</body></html>\n"
    )
    return page.encode(), b"text/html; charset=utf-8"


def block_response(verdict: Verdict, accept: bytes | None, ray_id: str, host: str) -> Respond:
    """The response for a terminating ``verdict`` (block, a challenge, or a rate-limit block)."""
    status = verdict.status_code or 403
    headers: Headers = [(b"Cache-Control", b"no-store")]
    if verdict.action in _CHALLENGES:
        headers.append((b"cf-mitigated", b"challenge"))
    if verdict.response is not None:
        body = verdict.response.content.encode()
        headers.append((b"Content-Type", verdict.response.content_type.encode()))
    else:
        code = 1015 if verdict.phase is Phase.HTTP_RATELIMIT else 1020
        note = (
            f" (The rule asked for a {verdict.action}; this edge has no challenge platform.)"
            if verdict.action in _CHALLENGES
            else ""
        )
        body, ctype = _default_body(_format(accept), code, status, ray_id, host, note)
        headers.append((b"Content-Type", ctype))
    headers.append((b"Content-Length", str(len(body)).encode()))
    return Respond(status, headers, body)
