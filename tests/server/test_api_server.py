"""The control plane's uvicorn server does not tick while no connection is open, ticks once a second while
one is, answers the first request of a quiet spell with a fresh Date header, and still stops at once."""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import uvicorn

from originlock.server.api_server import ApiServer
from originlock.testing.ports import free_port


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_an_idle_api_server_parks_until_a_connection_and_stops_at_once() -> None:
    port = free_port()
    server = ApiServer(uvicorn.Config(_hello, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    ticks: list[float] = []
    real_tick = server.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(time.monotonic())
        return await real_tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]

    async def scenario() -> tuple[list[httpx.Response], list[int], float, float]:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        answers, counts = [], []
        await asyncio.sleep(1.5)
        counts.append(len(ticks))  # no connection yet: the first tick only, then parked
        async with httpx.AsyncClient() as client:
            answers.append(await client.get(f"http://127.0.0.1:{port}/"))
            await asyncio.sleep(2.2)  # a kept-alive connection: ticking once a second
            counts.append(len(ticks))
        await asyncio.sleep(1.5)  # closed: one more tick at most, then parked
        counts.append(len(ticks))
        await asyncio.sleep(2.2)
        counts.append(len(ticks))
        async with httpx.AsyncClient() as client:  # the first request after a quiet spell
            answered_at = time.time()
            answers.append(await client.get(f"http://127.0.0.1:{port}/"))
        await asyncio.sleep(1.5)
        assert server.parked and "parked=True" in repr(server)
        asked = time.monotonic()
        server.should_exit = True  # what uvicorn's signal handler (and cli/serve.py's) does
        await asyncio.wait_for(serving, 5)
        return answers, counts, answered_at, time.monotonic() - asked

    answers, counts, answered_at, stopping = asyncio.run(scenario())
    assert all(a.status_code == 200 and a.text == "ok" for a in answers)
    idle, connected, closed, quiet = counts
    assert idle == 1, counts  # uvicorn's own main loop ticks ten times a second: ~15 ticks
    assert 2 <= connected - idle <= 4, counts  # the wake-up's tick, then one a second
    assert closed - connected <= 2 and quiet == closed, counts  # parked again: no tick in 2.2 s
    # The Date header of the request after 2+ s parked is the present, not the last tick's.
    date = parsedate_to_datetime(answers[1].headers["date"]).timestamp()
    assert -0.5 < answered_at - date < 1.5, (answered_at, answers[1].headers["date"])
    assert stopping < 0.5, stopping  # the park is cut short by should_exit
