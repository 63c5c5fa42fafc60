"""A real fleet: two `originlock serve` processes on one PostgreSQL store deliver an expiry alert to a webhook
once, and when the node running the alerts is killed, the other one delivers the next alert."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from alerthelpers import Receiver
from sqlalchemy import func, select

from originlock.server.alerts_job import JOB
from originlock.store import schema
from originlock.store.db import Store
from originlock.store.sealing import KeySealer
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki, leaf_pems

pytestmark = pytest.mark.slow

V4 = "/client/v4"
ALERT_INTERVAL = 0.1
#: Alert periods to watch after a delivery to be sure no second node sends it too (each node ticks ~10 times).
QUIET = 10 * ALERT_INTERVAL


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _holders(store_url: str) -> dict[str, str]:
    store = Store(store_url, KeySealer(os.urandom(32)))  # reads no sealed column: any key will do
    try:
        with store.read() as conn:
            return {r.job: r.holder for r in conn.execute(select(schema.job_leases))}
    finally:
        store.close()


def _upload_expiring_cert(node: ServeProcess, headers: dict[str, str], zone_name: str, pki: UploadPki) -> str:
    zone = httpx.post(f"{node.api_url}{V4}/zones", json={"name": zone_name}, headers=headers).json()["result"]["id"]
    certificate, key = leaf_pems(pki.client(zone_name, days=20))  # inside the 30-day threshold at once
    r = httpx.post(
        f"{node.api_url}{V4}/zones/{zone}/origin_tls_client_auth",
        json={"certificate": certificate, "private_key": key},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["result"]["id"])


def test_a_fleet_delivers_each_alert_once_and_survives_the_death_of_its_alert_node(
    tmp_path: Path, receiver: Receiver, pg_schema_factory: Any
) -> None:
    store_url = pg_schema_factory("ol_fleet")
    token = "fleet-admin-" + secrets.token_hex(16)
    env = {"ORIGINLOCK_MASTER_KEY": secrets.token_hex(32), "ORIGINLOCK_ADMIN_TOKEN": token}
    args = ["--alert-interval", str(ALERT_INTERVAL), "--origin-monitor-interval", "0", "--access-log", "off"]
    # One after the other, so the test is about the leases (test_nodes_starting_at_once_... starts them together).
    nodes = [start_serve(tmp_path / f"node{i}", store_url, env=env, extra_args=args) for i in (1, 2)]
    try:
        headers = {"Authorization": f"Bearer {token}"}
        api = nodes[0].api_url
        account = httpx.get(f"{api}{V4}/accounts", headers=headers).json()["result"][0]["id"]
        hook = httpx.post(
            f"{api}{V4}/accounts/{account}/alerting/v3/destinations/webhooks",
            json={"name": "ops", "url": receiver.url},
            headers=headers,
        ).json()["result"]["id"]
        r = httpx.post(
            f"{api}{V4}/accounts/{account}/alerting/v3/policies",
            json={
                "name": "AOP expiry",
                "alert_type": "zone_aop_custom_certificate_expiration_type",
                "enabled": True,
                "mechanisms": {"webhooks": [{"id": hook}]},
            },
            headers=headers,
        )
        assert r.status_code == 200, r.text
        pki = UploadPki.create()

        first = _upload_expiring_cert(nodes[0], headers, "one.test", pki)
        assert _wait_for(lambda: len(receiver.received) >= 1)
        time.sleep(QUIET)  # both nodes keep ticking: a second delivery would arrive now
        assert [body["data"]["certificate_id"] for body, _ in receiver.received] == [first]

        holders = _holders(store_url)
        # Each job has one holder, one of the two nodes (`originlock serve` wires a lease to every job).
        assert sorted(holders) == ["auto-rotation", JOB]
        pids = {n.proc.pid: n for n in nodes}
        assert {int(h.split(":")[-2]) for h in holders.values()} <= set(pids)
        holder = holders[JOB]
        running = pids[int(holder.split(":")[-2])]  # node ids are host:pid:random
        survivor = next(n for n in nodes if n is not running)
        # Killed: no clean shutdown, the lease is not given up and has to run out.
        running.proc.send_signal(signal.SIGKILL)
        running.proc.wait()

        second = _upload_expiring_cert(survivor, headers, "two.test", pki)
        assert _wait_for(lambda: len(receiver.received) >= 2)
        time.sleep(QUIET)
        assert [body["data"]["certificate_id"] for body, _ in receiver.received] == [first, second]
        assert f":{survivor.proc.pid}:" in _holders(store_url)[JOB]
    finally:
        for node in nodes:
            node.stop()


def test_nodes_starting_at_once_on_a_fresh_schema_all_come_up_on_one_deployment(
    tmp_path: Path, pg_schema_factory: Any
) -> None:
    store_url = pg_schema_factory("ol_fleet_start")
    token = "fleet-admin-" + secrets.token_hex(16)
    env = {"ORIGINLOCK_MASTER_KEY": secrets.token_hex(32), "ORIGINLOCK_ADMIN_TOKEN": token}
    args = ["--origin-monitor-interval", "0", "--access-log", "off"]
    count = 3
    with ThreadPoolExecutor(count) as pool:
        # Launched together; each start_serve waits for its node's /healthz (or raises with the node's output).
        futures = [
            pool.submit(start_serve, tmp_path / f"node{i}", store_url, env=env, extra_args=args) for i in range(count)
        ]
        started = [f.exception() for f in futures]
    nodes = [f.result() for f in futures if f.exception() is None]
    try:
        assert [str(e) for e in started if e is not None] == []
        headers = {"Authorization": f"Bearer {token}"}
        accounts = [httpx.get(f"{n.api_url}{V4}/accounts", headers=headers).json()["result"] for n in nodes]
        # One deployment: the same single account on every node.
        assert len(accounts[0]) == 1
        assert accounts == [accounts[0]] * count
        store = Store(store_url, KeySealer(os.urandom(32)))  # reads no sealed column: any key will do
        try:
            with store.read() as conn:
                assert conn.execute(select(func.count()).select_from(schema.api_tokens)).scalar_one() == 1
                assert len(list(conn.execute(select(schema.pki.c.name)))) == 4
        finally:
            store.close()
    finally:
        for node in nodes:
            node.stop()
