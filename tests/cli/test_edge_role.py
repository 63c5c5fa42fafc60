"""`originlock edge`: the data plane alone, its health listener without the API's web stack."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.conftest import drop_schema

from originlock.server import metrics
from originlock.server.bootstrap import MASTER_KEY_ENV, bootstrap
from originlock.store import dns, settings, zones
from originlock.store.db import Store
from originlock.testing.fleet import EdgeProcess, edge_status, start_edge, until
from originlock.testing.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow


def _get(url: str, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_the_edge_role_answers_health_and_metrics_without_fastapi(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    deployment = bootstrap(tmp_path / "data", store_url)
    generation = deployment.store.generation()
    deployment.store.close()
    # Every import the node makes is logged to its output: the web stack must not be among them.
    edge = start_edge(tmp_path / "data", store_url, env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        status, headers, body = _get(edge.health_url, "/healthz")
        assert (status, body, headers["content-type"]) == (200, b"ok\n", "text/plain; charset=utf-8")

        status, headers, body = _get(edge.health_url, "/healthz/snapshot?verbose=1")
        document = json.loads(body)
        assert status == 200 and headers["content-type"] == "application/json"
        assert document["serving"] is True and document["generation"] == generation
        assert document["from_disk"] is False and document["stale_seconds"] < 60
        assert {"routes", "zones", "rebuilds", "recent_changes", "last_rebuild_seconds"} <= document.keys()

        status, headers, body = _get(edge.health_url, "/metrics")
        assert status == 200 and headers["content-type"] == metrics.CONTENT_TYPE
        assert f"originlock_snapshot_generation {float(generation)}".encode() in body
        assert b"originlock_snapshot_from_disk 0.0" in body and b"process_cpu_seconds_total" in body

        status, headers, body = _get(edge.health_url, "/healthz", "HEAD")
        assert status == 200 and body == b"" and headers["content-length"] == "3"
        assert _get(edge.health_url, "/client/v4/zones")[0] == 404
        status, headers, _ = _get(edge.health_url, "/healthz", "POST")
        assert status == 405 and headers["allow"] == "GET, HEAD"
    finally:
        assert edge.stop() == 0
    output = edge.output()
    assert "originlock edge stopped" in output
    imported = {line.rsplit("|", 1)[-1].strip() for line in output.splitlines() if line.startswith("import time:")}
    # (cli/roles.py itself is imported by importlib.import_module, which the log does not show; its imports are.)
    assert {"originlock.server.health_http", "originlock.edge.runtime"} <= imported
    assert not {"fastapi", "uvicorn", "starlette", "pydantic"} & imported, sorted(imported)
    # Nor the control plane's jobs and the origin monitor, which only serve and api run.
    control_plane = {"originlock.cli.jobs", "originlock.server.monitor", "originlock.server.alerts_job"}
    assert not control_plane & imported, sorted(control_plane & imported)


@contextlib.contextmanager
def _seeded(
    pg_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, edges: list[EdgeProcess]
) -> Iterator[tuple[Store, str, dict[str, str], TcpProxy, str]]:
    """A schema of its own with zone ``name`` whose www the edge itself answers with a 301 (no origin needed),
    and a proxy to PostgreSQL the test can make refuse: the store, the zone id, the nodes' environment (the
    master key), the proxy and the store URL through it. Stops ``edges`` and drops the schema at the end."""
    schema = f"ol_edge_{secrets.token_hex(5)}"
    env = {MASTER_KEY_ENV: secrets.token_hex(32)}
    monkeypatch.setenv(MASTER_KEY_ENV, env[MASTER_KEY_ENV])
    deployment = bootstrap(tmp_path / "boot", f"{pg_base_url}?schema={schema}")
    store = deployment.store
    proxy = TcpProxy(("127.0.0.1", 5432))
    try:
        with store.write() as conn:
            zone = zones.create_zone(conn, name=name, account_id=deployment.account_id).id
            dns.create_record(conn, zone, dns.RecordInput("A", "www", "127.0.0.1", proxied=True))
            settings.set_setting(conn, zone, "always_use_https", "on")
        yield store, zone, env, proxy, store.url.replace("127.0.0.1:5432", proxy.address)
    finally:
        for edge in edges:
            edge.stop()
        proxy.close()
        store.close()
        drop_schema(schema)


@pytest.mark.postgres
def test_a_restart_serves_its_copy_before_the_store_layer_and_catches_up_after_an_outage(
    pg_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `originlock edge` restarted with its last-known-good copy: it serves the copy before it imports
    the store layer; with the store refusing connections it keeps serving it, and catches up when the store
    answers; with the store answering it moves to the store's generation at once."""
    host = "www.copy.test"
    node = tmp_path / "node"
    edges: list[EdgeProcess] = []
    with _seeded(pg_base_url, tmp_path, monkeypatch, "copy.test", edges) as (store, zone, env, proxy, via_proxy):
        env["PYTHONPROFILEIMPORTTIME"] = "1"
        edge = start_edge(node, via_proxy, env=env)
        edges.append(edge)
        assert edge_status(edge.http_port, host) == 301
        assert "from disk" not in edge.output()  # a new node compiles from the store
        until(lambda: (node / "last-known-good.db").exists(), 10, "the copy saved")
        assert edge.stop() == 0
        with store.write() as conn:  # the fleet moves on while the node is down
            settings.set_setting(conn, zone, "always_use_https", "off")

        proxy.set_mode("refuse")
        edge = start_edge(node, via_proxy, env=env)
        edges.append(edge)
        assert edge_status(edge.http_port, host) == 301  # the copy
        health = edge.snapshot()
        assert health["from_disk"] is True and health["serving"] is True
        time.sleep(1.0)
        assert edge_status(edge.http_port, host) == 301 and edge.snapshot()["from_disk"] is True
        proxy.set_mode("pass")
        until(lambda: edge.snapshot()["from_disk"] is False, 20, "caught up with the store")
        assert edge_status(edge.http_port, host) != 301
        assert edge.snapshot()["generation"] == store.generation()
        assert edge.stop() == 0

        with store.write() as conn:
            settings.set_setting(conn, zone, "always_use_https", "on")
        edge = start_edge(node, via_proxy, env=env)  # the store answers: the copy, then the store's at once
        edges.append(edge)
        until(lambda: edge.snapshot()["generation"] == store.generation(), 20, "the store's generation")
        assert edge.snapshot()["from_disk"] is False and edge_status(edge.http_port, host) == 301
        assert edge.stop() == 0
    for edge in edges[1:]:
        output = edge.output()
        assert "Traceback" not in output, output[-3000:]
        lines = output.splitlines()
        served = next(i for i, line in enumerate(lines) if "serving last-known-good generation" in line)
        # -X importtime's line for a package comes when its import ends (its own modules' lines before it).
        store_layer = next(i for i, line in enumerate(lines) if re.search(r"\|\s+sqlalchemy$", line.rstrip()))
        assert served < store_layer, "the copy is served before SQLAlchemy is imported"
    assert "store unreachable at start" in edges[1].output()


@pytest.mark.postgres
def test_with_workers_the_node_keeps_its_copy_and_every_process_starts_from_it(
    pg_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`originlock edge --workers 2`: the main process saves the last-known-good copy, and restarted while the
    store refuses connections, every process serves it (a worker that had nothing would exit, leaving its
    share of new connections to the others only while it lives)."""
    host = "www.workers.test"
    node = tmp_path / "node"
    edges: list[EdgeProcess] = []
    with _seeded(pg_base_url, tmp_path, monkeypatch, "workers.test", edges) as (_, _, env, proxy, via_proxy):
        edge = start_edge(node, via_proxy, env=env, extra_args=["--workers", "2"])
        edges.append(edge)
        until(lambda: (node / "last-known-good.db").exists(), 10, "the copy saved by the main process")
        assert edge.stop() == 0

        proxy.set_mode("refuse")
        edge = start_edge(node, via_proxy, env=env, extra_args=["--workers", "2"])
        edges.append(edge)
        assert edge.snapshot()["from_disk"] is True
        # New connections land on either process (SO_REUSEPORT): all of them answer from the copy.
        until(lambda: edge.output().count("serving last-known-good generation") >= 2, 20, "both processes")
        assert all(edge_status(edge.http_port, host) == 301 for _ in range(40))
        assert edge.stop() == 0
    assert "Traceback" not in edges[1].output(), edges[1].output()[-3000:]
