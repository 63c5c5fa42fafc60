"""`originlock edge`: the data plane alone, its health listener without the API's web stack."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from originlock.server import metrics
from originlock.server.bootstrap import bootstrap
from originlock.testing.fleet import start_edge

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
