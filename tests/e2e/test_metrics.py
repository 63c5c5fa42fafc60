"""`GET /metrics` on a running `originlock serve`: requests the edge answered, by zone and status."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from originlock.testing.serve import start_serve


def _count(text: str, zone: str, status: int) -> float:
    match = re.search(rf'^originlock_edge_requests_total\{{status="{status}",zone="{zone}"\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_edge_requests_are_counted(tmp_path: Path) -> None:
    proc = start_serve(tmp_path / "data", extra_args=["--access-log", "off", "--origin-http-port", "9"])
    try:
        api = httpx.Client(base_url=f"{proc.api_url}/client/v4", headers={"Authorization": f"Bearer {proc.token}"})
        zone = api.post("/zones", json={"name": "metrics.test"}).json()["result"]["id"]
        api.post(
            f"/zones/{zone}/dns_records", json={"type": "A", "name": "www", "content": "127.0.0.1", "proxied": True}
        )
        api.patch(f"/zones/{zone}/settings/ssl", json={"value": "flexible"})
        edge = f"http://127.0.0.1:{proc.http_port}/"
        assert httpx.get(edge, headers={"Host": "nowhere.test"}).status_code == 530
        deadline = time.monotonic() + 10  # within a second normally; generous on a loaded machine
        while httpx.get(edge, headers={"Host": "www.metrics.test"}).status_code == 530:  # until the edge has it
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Counted as deltas: how many 530s the wait above saw depends on how fast the edge picked the record up.
        before = httpx.get(f"{proc.api_url}/metrics").text
        for _ in range(3):  # port 9 refuses: 521, counted under the zone
            assert httpx.get(edge, headers={"Host": "www.metrics.test"}).status_code == 521
        for _ in range(2):  # an unknown hostname has no zone
            assert httpx.get(edge, headers={"Host": "nowhere.test"}).status_code == 530
        text = httpx.get(f"{proc.api_url}/metrics").text
        assert _count(text, "", 530) == _count(before, "", 530) + 2
        assert _count(text, "metrics.test", 521) == _count(before, "metrics.test", 521) + 3
    finally:
        proc.stop()
