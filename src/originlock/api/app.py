"""The control plane: a Cloudflare-v4-compatible API under ``/client/v4`` plus the public CA downloads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from originlock._version import __version__
from originlock.api.audit import AuditLog
from originlock.api.envelope import fail
from originlock.api.failures import ContainErrors, internal_error, store_error_response
from originlock.api.gate import DEFAULT_MAX_BODY, ApiGate
from originlock.api.routes import (
    account_rulesets,
    accounts,
    alerting,
    alerting_history,
    aop,
    custom_certs,
    dns,
    dns_bulk,
    edge_nodes,
    exposure,
    origin_ca,
    rulesets,
    settings,
    tokens,
    zones,
)
from originlock.server import metrics
from originlock.store.db import Store
from originlock.store.errors import StoreError
from originlock.store.pki import CA_NAMES, public_pem

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/client/v4"
log = logging.getLogger("originlock.api")


def _pointer(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return "/" + "/".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        # Ruleset validation errors point into the body (``/rules/0/expression``), as Cloudflare's do;
        # a store outage is a 503 (api/failures.py).
        response: JSONResponse = store_error_response(exc)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = tuple(first.get("loc", ()))
        where = _pointer(loc)
        if first.get("type") == "json_invalid":
            message = "Request body is not valid JSON"
        elif loc and loc[0] == "query":
            message = f"query parameter {loc[-1]}: {first['msg']}"
        else:
            message = f"Request body is invalid: {where}: {first['msg']}"
        # The message names the field, never its value: a private_key must not come back in an error.
        return fail(400, 9207 if loc and loc[0] == "body" else 1004, message, pointer=where)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return fail(404, 7003, f"Could not route to {request.url.path}, perhaps your object identifier is invalid?")
        if exc.status_code == 405:
            return fail(405, 10405, f"Method {request.method} not allowed for {request.url.path}")
        return fail(exc.status_code, 1000, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Not reached while ContainErrors is installed (it catches first, and never re-raises).
        response: JSONResponse = internal_error(request.method, request.url.path, exc)
        return response


def _is_multipart(scope: Any) -> bool:
    # File uploads (DNS import) keep their multipart Content-Type: the boundary is in it.
    return any(k == b"content-type" and v.lower().startswith(b"multipart/form-data") for k, v in scope["headers"])


class JsonBodyByDefault:
    """Treat API request bodies as JSON whatever their Content-Type, as Cloudflare does.

    ``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``; without this the body would be
    refused as "not an object" and the user left guessing.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX) and not _is_multipart(scope):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def create_app(
    store: Store, *, clock: Callable[[], datetime] | None = None, max_body: int = DEFAULT_MAX_BODY
) -> FastAPI:
    app = FastAPI(
        title="originlock control plane",
        version=__version__,
        description="Cloudflare v4 compatible API for zones, DNS, SSL settings and Authenticated Origin Pulls.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.add_middleware(JsonBodyByDefault)
    # Inside the gate: the audit log sees the answer the caller got, and reads "before" through the whole stack;
    # only authenticated requests with a bounded body reach it.
    app.add_middleware(AuditLog, prefix=API_PREFIX, store=store)
    # Before any route or body parsing: the token is checked and the body's size bounded first.
    public = frozenset({f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs", f"{API_PREFIX}/docs/oauth2-redirect"})
    app.add_middleware(ApiGate, store=store, prefix=API_PREFIX, public=public, max_body=max_body, clock=clock)
    # Outside the gate: a failure anywhere (the gate's own store lookup included) is logged as a type and an
    # id, never a traceback; it reads no body.
    app.add_middleware(ContainErrors)
    app.state.store = store
    app.state.clock = clock
    _install_error_handlers(app)
    # dns_bulk before dns, whose `.../dns_records/{record_id}` would also match `export`; exposure before aop,
    # whose `.../origin_tls_client_auth/{certificate_id}` would also match it.
    for module in (
        zones,
        dns_bulk,
        dns,
        settings,
        exposure,
        aop,
        tokens,
        origin_ca,
        alerting,
        alerting_history,
        custom_certs,
        rulesets,
        accounts,
        account_rulesets,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(edge_nodes.router, prefix=API_PREFIX)  # the fleet's nodes (issue 15)

    @app.get("/ca/{name}.pem", include_in_schema=False)
    def ca_pem(name: str) -> Response:
        if name not in CA_NAMES:
            return PlainTextResponse(f"unknown CA {name!r}; one of: {', '.join(CA_NAMES)}\n", status_code=404)
        with store.read() as conn:
            pem = public_pem(conn, name)
        if pem is None:
            return PlainTextResponse("CA not created yet\n", status_code=404)
        return Response(pem, media_type="application/x-pem-file")

    # Prometheus, unauthenticated like /healthz (docs/api.md); `serve` adds the edge pool's collector.
    app.state.metrics = metrics.metrics_registry(store)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.render(app.state.metrics), media_type=metrics.CONTENT_TYPE)

    @app.get("/healthz", include_in_schema=False)
    def health() -> PlainTextResponse:
        store.generation()
        return PlainTextResponse("ok\n")

    return app
