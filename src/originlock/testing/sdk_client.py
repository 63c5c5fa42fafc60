"""The official `cloudflare` SDK pointed at an in-process app: the SDK's own request building, parsing and
auto-paging, without starting a server per test (tests/e2e does that against `originlock serve`)."""

from __future__ import annotations

from cloudflare import Cloudflare
from fastapi.testclient import TestClient


def sdk(client: TestClient, token: str) -> Cloudflare:
    return Cloudflare(api_token=token, base_url=f"{client.base_url}/client/v4", http_client=client, max_retries=0)


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")
