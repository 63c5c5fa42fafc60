"""The control plane's uvicorn server ticks once a second when idle, and still stops at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import uvicorn

from originlock.server.api_server import ApiServer
from originlock.testing.ports import free_port


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_an_idle_api_server_ticks_once_a_second_and_stops_at_once() -> None:
    port = free_port()
    server = ApiServer(uvicorn.Config(_hello, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    ticks: list[float] = []
    real_tick = server.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(time.monotonic())
        return await real_tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]

    async def scenario() -> tuple[httpx.Response, float]:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/")
        await asyncio.sleep(2.5)
        asked = time.monotonic()
        server.should_exit = True  # what uvicorn's signal handler (and cli/serve.py's) does
        await asyncio.wait_for(serving, 5)
        return answer, time.monotonic() - asked

    answer, stopping = asyncio.run(scenario())
    assert answer.status_code == 200 and answer.text == "ok"
    assert "date" in answer.headers  # uvicorn's once-a-second Date header is still set
    # uvicorn's own main loop ticks ten times a second: ~25 ticks in these 2.5 s.
    assert 2 <= len(ticks) <= 5, len(ticks)
    assert stopping < 0.5, stopping  # the wait for the next tick is cut short by should_exit
