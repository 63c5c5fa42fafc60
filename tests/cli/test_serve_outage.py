"""`originlock serve` restarted while its PostgreSQL store refuses connections: its edge serves the node's
last-known-good copy, its API answers 503 with a v4 body, and the node starts as usual when the store answers."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.conftest import drop_schema

from originlock.cli.serve_outage import ApiUntilReady, outage_start
from originlock.server.bootstrap import MASTER_KEY_ENV
from originlock.testing.fleet import edge_status, until
from originlock.testing.serve import start_serve
from originlock.testing.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

HOST = "www.outage.test"


@pytest.mark.postgres
def test_serve_started_during_an_outage_serves_its_copy_and_its_api_answers_503(
    pg_base_url: str, tmp_path: Path
) -> None:
    schema = f"ol_serveout_{secrets.token_hex(5)}"
    proxy = TcpProxy(("127.0.0.1", 5432))
    store = f"{pg_base_url.replace('127.0.0.1:5432', proxy.address)}?schema={schema}"
    env = {MASTER_KEY_ENV: secrets.token_hex(32)}
    data = tmp_path / "node"
    nodes = []
    try:
        node = start_serve(data, store, env=env)
        nodes.append(node)
        api = httpx.Client(base_url=f"{node.api_url}/client/v4", headers={"Authorization": f"Bearer {node.token}"})
        zone = api.post("/zones", json={"name": "outage.test"}).json()["result"]["id"]
        api.post(
            f"/zones/{zone}/dns_records", json={"type": "A", "name": "www", "content": "127.0.0.1", "proxied": True}
        )
        # A 301 from the edge itself: no origin needed to tell which configuration is served.
        assert api.patch(f"/zones/{zone}/settings/always_use_https", json={"value": "on"}).status_code == 200
        until(lambda: edge_status(node.http_port, HOST) == 301, 10, "the setting served")
        until(lambda: (data / "last-known-good.db").exists(), 10, "the copy saved")
        time.sleep(1.5)  # the copy is saved at most once a second: the last change is in it
        assert node.stop() == 0

        proxy.set_mode("refuse")
        node = start_serve(data, store, env=env, ready_path="/healthz/snapshot")
        nodes.append(node)
        assert "store unreachable" in node.output()
        assert edge_status(node.http_port, HOST) == 301  # the copy
        snapshot = httpx.get(f"{node.api_url}/healthz/snapshot").json()
        assert snapshot["serving"] is True and snapshot["from_disk"] is True
        answer = httpx.get(f"{node.api_url}/client/v4/zones", headers={"Authorization": f"Bearer {node.token}"})
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        body = answer.json()
        assert body["success"] is False and body["errors"][0]["code"] == 10503
        assert httpx.get(f"{node.api_url}/healthz").status_code == 503

        proxy.set_mode("pass")
        api = httpx.Client(base_url=f"{node.api_url}/client/v4", headers={"Authorization": f"Bearer {node.token}"})
        until(lambda: api.get("/zones").status_code == 200, 20, "the control plane up")
        until(lambda: httpx.get(f"{node.api_url}/healthz/snapshot").json()["from_disk"] is False, 20, "caught up")
        assert api.patch(f"/zones/{zone}/settings/always_use_https", json={"value": "off"}).status_code == 200
        until(lambda: edge_status(node.http_port, HOST) != 301, 10, "a change through the API served")
        assert "originlock control plane on" in node.output()
        assert node.stop() == 0
    finally:
        for node in nodes:
            node.stop()
        proxy.close()
        drop_schema(schema)
    for node in nodes:
        assert "Traceback" not in node.output(), node.output()[-3000:]


def test_no_copy_or_no_outage_means_no_outage_start(tmp_path: Path) -> None:
    """Only an unreachable PostgreSQL store with a copy on disk starts the edge alone; a SQLite store, another
    error, or no copy is reported as before."""
    from sqlalchemy.exc import OperationalError

    refused = OperationalError("connect", {}, Exception("connection refused"))
    assert outage_start(tmp_path, "postgresql://x@127.0.0.1:1/test", refused) is None  # no copy
    assert outage_start(tmp_path, None, refused) is None  # SQLite: a file to fix, not an outage
    assert outage_start(tmp_path, "postgresql://x@127.0.0.1:1/test", ValueError("bad URL")) is None


async def test_the_api_answers_503_until_ready_then_the_control_plane() -> None:
    class Source:
        def statistics(self) -> None:
            return None  # a source that keeps no statistics: /healthz/snapshot is a 503 like the rest

    holder = ApiUntilReady(Source())
    transport = httpx.ASGITransport(app=holder)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        answer = await client.get("/client/v4/zones")
        assert answer.status_code == 503 and answer.json()["errors"][0]["code"] == 10503
        assert (await client.get("/healthz/snapshot")).status_code == 503

        async def app(scope: object, receive: object, send: Callable[[object], object]) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[misc]
            await send({"type": "http.response.body", "body": b"control plane"})  # type: ignore[misc]

        holder.ready(app)
        answer = await client.get("/client/v4/zones")
        assert answer.status_code == 200 and answer.text == "control plane"


@pytest.mark.postgres
def test_a_failed_bootstrap_leaves_no_probe_behind(
    pg_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve retries bootstrap every second through an outage: a failed attempt must close its store, or each
    leaves a breaker probe trying the store every half second until it answers."""
    import threading

    from sqlalchemy.exc import OperationalError

    from originlock.server.bootstrap import bootstrap
    from originlock.store import breaker, pki
    from originlock.store.errors import StoreUnavailable

    def unreachable(*_args: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(breaker, "PROBE_SECONDS", 30.0)  # a probe left behind would still be waiting
    monkeypatch.setattr(pki, "ensure_pki", unreachable)
    schema = f"ol_serveboot_{secrets.token_hex(5)}"
    try:
        with pytest.raises(StoreUnavailable):
            bootstrap(tmp_path / "data", f"{pg_base_url}?schema={schema}")
        probes = [t for t in threading.enumerate() if t.name == "originlock-store-probe"]
        for probe in probes:
            probe.join(5)
        assert not any(probe.is_alive() for probe in probes)
        assert probes, "the failure did not open the breaker: this test tests nothing"
    finally:
        drop_schema(schema)
