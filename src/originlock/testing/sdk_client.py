"""The official `cloudflare` SDK pointed at an in-process app: the SDK's own request building, parsing and
auto-paging, without starting a server per test (tests/e2e does that against `originlock serve`).

The SDK accepts only an ``httpx.Client``, while Starlette's ``TestClient`` is built on ``httpx2`` wherever that
is installed (and on ``httpx`` only with a deprecation warning): the SDK gets an ``httpx.Client`` whose
transport hands each request to the ``TestClient``, so these tests work with either."""

from __future__ import annotations

import httpx
from cloudflare import Cloudflare
from fastapi.testclient import TestClient

#: Recomputed on each side: the body is passed whole, and the ``TestClient`` already decoded it.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "content-encoding"})


class _AppTransport(httpx.BaseTransport):
    def __init__(self, client: TestClient) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        headers = [(name, value) for name, value in request.headers.multi_items() if name.lower() not in _FRAMING]
        answer = self._client.request(request.method, str(request.url), headers=headers, content=request.read())
        kept = [(name, value) for name, value in answer.headers.multi_items() if name.lower() not in _FRAMING]
        return httpx.Response(answer.status_code, headers=kept, content=answer.content, request=request)


def sdk(client: TestClient, token: str) -> Cloudflare:
    base_url = f"{client.base_url}/client/v4"
    http_client = httpx.Client(base_url=base_url, transport=_AppTransport(client))
    return Cloudflare(api_token=token, base_url=base_url, http_client=http_client, max_retries=0)


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")
