"""Phases, actions and their parameters (spec §2.4 to §2.6).

A self-hosted edge has no challenge platform, so the challenge actions are *terminating* and the
edge answers them the way it answers ``block`` (see ``docs/waf.md``); the verdict keeps the original
action so logs and the API still show what the rule asked for.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from originlock.wire_syntax import MAX_HOSTNAME, check_field_value, check_host, check_hostname

__all__ = [
    "PHASE_ACTIONS",
    "TERMINATING",
    "Action",
    "BlockResponse",
    "Phase",
    "RouteOverride",
    "parse_block_response",
    "parse_route",
]


class Phase(enum.StrEnum):
    HTTP_REQUEST_ORIGIN = "http_request_origin"
    HTTP_REQUEST_FIREWALL_CUSTOM = "http_request_firewall_custom"
    HTTP_RATELIMIT = "http_ratelimit"
    HTTP_REQUEST_FIREWALL_MANAGED = "http_request_firewall_managed"
    HTTP_RESPONSE_FIREWALL_MANAGED = "http_response_firewall_managed"
    """After the origin's response head: the managed rulesets' response rules (the CRS's RESPONSE-95x)."""


class Action(enum.StrEnum):
    BLOCK = "block"
    CHALLENGE = "challenge"
    JS_CHALLENGE = "js_challenge"
    MANAGED_CHALLENGE = "managed_challenge"
    LOG = "log"
    SKIP = "skip"
    EXECUTE = "execute"
    ROUTE = "route"


TERMINATING: Final = frozenset({Action.BLOCK, Action.CHALLENGE, Action.JS_CHALLENGE, Action.MANAGED_CHALLENGE})

PHASE_ACTIONS: Final = {
    Phase.HTTP_REQUEST_ORIGIN: frozenset({Action.ROUTE}),
    Phase.HTTP_REQUEST_FIREWALL_CUSTOM: frozenset(
        {Action.BLOCK, Action.CHALLENGE, Action.JS_CHALLENGE, Action.MANAGED_CHALLENGE, Action.LOG, Action.SKIP}
    ),
    Phase.HTTP_RATELIMIT: frozenset(
        {Action.BLOCK, Action.CHALLENGE, Action.JS_CHALLENGE, Action.MANAGED_CHALLENGE, Action.LOG}
    ),
    Phase.HTTP_REQUEST_FIREWALL_MANAGED: frozenset({Action.EXECUTE, Action.SKIP, Action.LOG}),
    Phase.HTTP_RESPONSE_FIREWALL_MANAGED: frozenset({Action.EXECUTE, Action.SKIP, Action.LOG}),
}

_CONTENT_TYPES: Final = frozenset({"text/html", "text/plain", "application/json", "text/xml"})
MAX_RATELIMIT_BODY: Final = 30 * 1024
"""Cloudflare caps a rate-limit custom response body at 30 KB (spec §1.7)."""


@dataclass(frozen=True, slots=True)
class BlockResponse:
    """A custom block response; None on the verdict means "the default page for Accept"."""

    status_code: int
    content: str
    content_type: str


@dataclass(frozen=True, slots=True)
class RouteOverride:
    """Origin Rules ``route`` parameters; None means "unchanged"."""

    origin_host: str | None = None
    origin_port: int | None = None
    sni: str | None = None
    host_header: str | None = None

    def merged(self, later: RouteOverride) -> RouteOverride:
        """Later matching rules win, key by key (Cloudflare Origin Rules)."""
        return RouteOverride(
            later.origin_host if later.origin_host is not None else self.origin_host,
            later.origin_port if later.origin_port is not None else self.origin_port,
            later.sni if later.sni is not None else self.sni,
            later.host_header if later.host_header is not None else self.host_header,
        )


def parse_block_response(params: Mapping[str, Any], *, ratelimit: bool) -> BlockResponse | None:
    """Validate ``action_parameters.response``; all three keys are required when present.

    Raises:
        ValueError: naming the bad key.
    """
    response = params.get("response")
    if response is None:
        return None
    if not isinstance(response, Mapping) or set(response) != {"status_code", "content", "content_type"}:
        raise ValueError("response needs exactly status_code, content and content_type")
    status, content, ctype = response["status_code"], response["content"], response["content_type"]
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 499:
        raise ValueError("response.status_code must be 400-499")
    if ctype not in _CONTENT_TYPES or not isinstance(content, str):
        raise ValueError(f"response.content_type must be one of {sorted(_CONTENT_TYPES)}")
    if ratelimit and len(content.encode()) > MAX_RATELIMIT_BODY:
        raise ValueError("response.content must be at most 30 KB")
    return BlockResponse(status, content, ctype)


def _host_field(value: str, what: str) -> str:
    return check_host(check_field_value(value, what, max_length=MAX_HOSTNAME + 8), what, port=True)


def parse_route(params: Mapping[str, Any]) -> RouteOverride:
    """Validate ``route`` parameters: ``origin.host``, ``origin.port``, ``sni.value``, ``host_header``.

    Raises:
        ValueError: naming the bad key.
    """
    origin = params.get("origin") or {}
    sni = params.get("sni") or {}
    port = origin.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535):
        raise ValueError("origin.port must be 1-65535")
    checks: tuple[tuple[str, object, Callable[[str, str], str]], ...] = (
        ("origin.host", origin.get("host"), check_host),
        ("sni.value", sni.get("value"), check_hostname),
        ("host_header", params.get("host_header"), _host_field),
    )
    values: list[str | None] = []
    for name, value, check in checks:
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{name} must be a non-empty string")
        # These go into the origin request's Host field and the TLS handshake: refuse CR/LF/NUL and
        # anything else that is not a hostname here, where they enter (issue 10, item 3).
        values.append(check(value, name) if isinstance(value, str) else None)
    host, sni_value, host_header = values
    route = RouteOverride(host, port, sni_value, host_header)
    if route == RouteOverride():
        raise ValueError("route needs at least one of origin, sni, host_header")
    return route
