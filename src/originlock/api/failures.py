"""How the API fails: store outages as 503, races as 409, anything else as a 500 with an id, and no traceback.

Why an ASGI wrapper of our own: Starlette's ``ServerErrorMiddleware`` calls the ``Exception`` handler
and then re-raises, so uvicorn logs the whole traceback, and a database error's text carries the SQL
statement and its parameters (a certificate, a token hash). :class:`ContainErrors` sits inside it and
never lets an exception out: it logs the exception's type and a random id, and answers with that id so
an operator can match a user's report to the log line.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi.responses import JSONResponse

from originlock.api.envelope import fail
from originlock.store.errors import Conflict, StoreError, StoreUnavailable

__all__ = ["ContainErrors", "store_error_response"]

log = logging.getLogger("originlock.api")

#: Seconds a client is asked to wait after a 503: about the store's breaker window (store/db.py).
RETRY_AFTER = "1"


def store_error_response(exc: StoreError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, StoreUnavailable):
        headers = {"retry-after": RETRY_AFTER}  # the store's breaker logs the outage once, not per request
    elif isinstance(exc, Conflict):
        headers = {"x-should-retry": "true"}  # fail() says "false" below 500; a lost race is worth retrying
    return fail(exc.http_status, exc.code, exc.message, pointer=getattr(exc, "pointer", None), headers=headers)


def internal_error(method: str, path: str, exc: BaseException) -> Any:
    error_id = secrets.token_hex(6)
    # The type only: an exception's text may quote SQL parameters or request data.
    log.error("internal error %s on %s %s: %s", error_id, method, path, type(exc).__name__)
    return fail(500, 1000, f"internal error (id {error_id})")


class ContainErrors:
    """Turn any exception escaping the app into a logged 500 (module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if isinstance(exc, StoreError):
                response = store_error_response(exc)
            else:
                response = internal_error(scope.get("method", "?"), scope.get("path", "?"), exc)
            if not started:
                await response(scope, receive, send)
