"""Cloudflare's v4 response envelope (spec §8.1) and the JSON shapes shared by several routes."""

from __future__ import annotations

import math
from typing import Any

from fastapi.responses import JSONResponse

__all__ = ["fail", "ok", "result_info"]


def ok(
    result: Any, info: dict[str, Any] | None = None, status: int = 200, messages: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": messages or [], "result": result}
    if info is not None:
        body["result_info"] = info
    return JSONResponse(body, status_code=status)


def fail(
    status: int, code: int, message: str, pointer: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    # The SDK retries 409/429/5xx; a validation answer must not be retried (spec §9.3 item 4).
    retry = {"x-should-retry": "false"} if status < 500 else {}
    return JSONResponse(
        {"success": False, "errors": [error], "messages": [], "result": None},
        status_code=status,
        headers={**retry, **(headers or {})},
    )


def result_info(page: int, per_page: int, count: int, total_count: int) -> dict[str, int]:
    return {
        "page": page,
        "per_page": per_page,
        "count": count,
        "total_count": total_count,
        "total_pages": max(1, math.ceil(total_count / per_page)) if per_page else 1,
    }
