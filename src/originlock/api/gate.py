"""The API's front door: authenticate the token, then admit a body of bounded size, before any route runs.

FastAPI reads and parses a request's body before it resolves a route's dependencies, so checking the token
in a dependency let an anonymous client make the server buffer any amount of JSON before its 401 (issue 10,
item 8). Here, as ASGI middleware, the order is: token (and its restrictions), then ``Content-Length``
against the limit, then the body, read at most ``max_body`` bytes, and only then the application.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.datastructures import Headers

from originlock.api.authz import Unauthorized, check_usable
from originlock.api.envelope import fail
from originlock.api.failures import store_error_response
from originlock.api.limits import BODY_TOO_LARGE, DEFAULT_MAX_BODY
from originlock.store.db import Store
from originlock.store.errors import Invalid, StoreError
from originlock.store.request_scope import request_scope
from originlock.store.tokens import Token, find_token

__all__ = ["BODY_TOO_LARGE", "DEFAULT_MAX_BODY", "ApiGate", "authenticate_headers"]


def authenticate_headers(store: Store, headers: Headers, client_ip: str | None, now: datetime) -> Token:
    """The request's token, usable now from ``client_ip``; raises Cloudflare's 400/401/403 answers."""
    header = headers.get("authorization")
    if header is None:
        if headers.get("x-auth-key") or headers.get("x-auth-email"):
            raise Unauthorized(
                "X-Auth-Email/X-Auth-Key are not supported; use an API token (Authorization: Bearer)", 6003
            )
        raise Unauthorized("Missing X-Auth-Key, X-Auth-Email or Authorization headers", 9106)
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Invalid("Invalid format for Authorization header", 6111)
    # One statement: no transaction around it (on PostgreSQL, two round trips fewer on every request).
    with store.read(consistent=False) as conn:
        token = find_token(conn, secret.strip())
    if token is None:
        raise Unauthorized("Invalid API Token", 1000)
    check_usable(token, now, client_ip)
    return token


class ApiGate:
    """ASGI middleware for every request under ``prefix`` except the public paths (the OpenAPI document)."""

    def __init__(
        self,
        app: Any,
        *,
        store: Store,
        prefix: str,
        public: frozenset[str],
        max_body: int = DEFAULT_MAX_BODY,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.prefix = prefix
        self.public = public
        self.max_body = max_body
        self.clock = clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefix) or path in self.public:
            await self.app(scope, receive, send)
            return
        # The token lookup's checkout pings the store; the request's later checkouts (its route, the audit
        # entry) trust a connection it answered on since (store/request_scope.py). A write's refresh of this
        # process's edge runs once the response's last byte is handed to the server, not on its way.
        with request_scope() as request:

            async def send_then_refresh(message: dict[str, Any]) -> None:
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    request.run_deferred()

            await self._gated(scope, receive, send_then_refresh)

    async def _gated(self, scope: Any, receive: Any, send: Any) -> None:
        headers = Headers(scope=scope)
        client = scope.get("client")
        now = self.clock() if self.clock is not None else datetime.now(UTC)
        try:
            token = await anyio.to_thread.run_sync(
                authenticate_headers, self.store, headers, client[0] if client else None, now
            )
        except StoreError as exc:
            # The body (if any) is never read: close the connection rather than drain it.
            answer = store_error_response(exc)  # a store outage is a 503 with Retry-After, as on every route
            answer.headers["connection"] = "close"
            await answer(scope, receive, send)
            return
        too_large = fail(
            413,
            BODY_TOO_LARGE,
            f"Request body is larger than the API's limit of {self.max_body} bytes "
            "(originlock serve --api-max-body changes it)",
            headers={"connection": "close"},
        )
        declared = headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body:
            await too_large(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        scope.setdefault("state", {})["token"] = token
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Any) -> Callable[[], Any]:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, Any] = await receive()  # after the body: wait for the disconnect
        return message

    return replay
