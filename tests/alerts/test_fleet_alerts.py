"""Expiry alerts in a fleet: two nodes (two engines on one store) running the job deliver each alert to the
webhook exactly once, a standby node takes over when the node running the job dies, and two nodes queueing
or claiming the same delivery at the same instant never duplicate it. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alerthelpers import Receiver
from sqlalchemy import select

from originlock.server.alerts_job import JOB, ExpiryAlerts, post_json
from originlock.server.bootstrap import bootstrap
from originlock.server.leadership import JobLease
from originlock.store import alerts, aop, schema, zones
from originlock.store.db import Store, from_iso
from originlock.store.leases import current_lease
from originlock.testing.upload_pki import UploadPki, leaf_pems

TTL = timedelta(seconds=90)


@dataclass
class Fleet:
    """Node a's and node b's store connections, one zone certificate 40 days from expiry, a policy to the
    receiver, and one clock both nodes read."""

    a: Store
    b: Store
    expires_on: datetime
    clock: dict[str, datetime]

    def now(self) -> datetime:
        return self.clock["now"]

    def node(self, name: str, store: Store, *, leased: bool = True, send: Callable[..., None] = post_json) -> Any:
        lease = JobLease(store, JOB, f"node-{name}", TTL) if leased else None
        return ExpiryAlerts(store, clock=self.now, send=send, lease=lease)

    def queued(self) -> list[str]:
        with self.a.read() as conn:
            return sorted(conn.execute(select(schema.alert_deliveries.c.id)).scalars())


@pytest.fixture
def fleet(store_url: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    deployment = bootstrap(tmp_path / "data", store_url)
    a = deployment.store
    b = Store(deployment.store_url, a.sealer)  # a second node: its own engine, same database, same master key
    real_now = datetime.now(UTC)
    with a.write() as conn:
        hook = alerts.create_webhook(conn, a.sealer, deployment.account_id, name="ops", url=receiver.url, secret=None)
        alerts.create_policy(
            conn,
            deployment.account_id,
            name="AOP expiry",
            alert_type="zone_aop_custom_certificate_expiration_type",
            enabled=True,
            mechanisms={"webhooks": [{"id": hook}]},
            filters={},
            description="",
        )
        zone = zones.create_zone(conn, name="fleet.test", account_id=deployment.account_id)
        row = aop.upload_cert(
            conn, a.sealer, zone.id, "zone", *leaf_pems(UploadPki.create().client("fleet.test", days=40)), real_now
        )
    yield Fleet(a, b, from_iso(row.expires_on), {"now": real_now})
    b.close()
    a.close()


def thresholds(receiver: Receiver) -> list[int]:
    return [body["data"]["threshold_days"] for body, _ in receiver.received]


def test_two_nodes_deliver_an_expiry_alert_exactly_once(fleet: Fleet, receiver: Receiver) -> None:
    fleet.clock["now"] = fleet.expires_on - timedelta(days=29)  # the 30-day alert is due
    during: list[int] = []

    def send_and_let_b_tick(url: str, payload: dict[str, Any], secret: str | None) -> None:
        # Node b ticks while node a is delivering (queued, not yet marked sent): where a duplicate would go out.
        during.append(node_b.tick())
        post_json(url, payload, secret)

    node_a = fleet.node("a", fleet.a, send=send_and_let_b_tick)
    node_b = fleet.node("b", fleet.b)
    assert node_a.tick() == 1
    assert during == [0]
    for _ in range(3):  # every later period, on both nodes: nothing more
        fleet.clock["now"] += timedelta(minutes=1)
        assert node_b.tick() == 0 and node_a.tick() == 0
    assert thresholds(receiver) == [30]


def test_without_leases_a_claimed_delivery_is_still_sent_once(fleet: Fleet, receiver: Receiver) -> None:
    """The claim alone (a lease that ran out in the middle of a long tick) keeps a delivery single."""
    fleet.clock["now"] = fleet.expires_on - timedelta(days=29)
    during: list[int] = []

    def send_and_let_b_tick(url: str, payload: dict[str, Any], secret: str | None) -> None:
        during.append(node_b.tick())
        post_json(url, payload, secret)

    node_a = fleet.node("a", fleet.a, leased=False, send=send_and_let_b_tick)
    node_b = fleet.node("b", fleet.b, leased=False)
    assert node_a.tick() == 1 and during == [0]
    assert thresholds(receiver) == [30]


def test_a_standby_node_takes_over_when_the_node_running_alerts_dies(fleet: Fleet, receiver: Receiver) -> None:
    node_a, node_b = fleet.node("a", fleet.a), fleet.node("b", fleet.b)
    fleet.clock["now"] = fleet.expires_on - timedelta(days=14, seconds=30)
    assert node_a.tick() == 1  # node a runs the job: the 30-day alert
    first_look = fleet.now()

    fleet.clock["now"] = fleet.expires_on - timedelta(days=14) + timedelta(seconds=30)  # the 14-day alert is due
    # Node a has died (no more ticks, lease not given up). Until its lease runs out, node b stands by:
    # it neither delivers nor even queues the alert.
    assert node_b.tick() == 0
    assert len(fleet.queued()) == 1
    fleet.clock["now"] = first_look + TTL
    assert node_b.tick() == 1  # a's lease ran out: b took the job over
    with fleet.b.read() as conn:
        lease = current_lease(conn, JOB, fleet.now())
    assert lease is not None and lease.holder == "node-b"

    fleet.clock["now"] += timedelta(seconds=1)
    assert node_a.tick() == 0  # node a coming back stands by
    assert thresholds(receiver) == [30, 14]


def test_stopping_the_job_gives_the_lease_up(fleet: Fleet) -> None:
    lease = JobLease(fleet.a, JOB, "node-a", TTL)
    job = ExpiryAlerts(fleet.a, interval=0.01, lease=lease)

    async def run_then_stop() -> None:
        task = asyncio.create_task(job.run())
        for _ in range(500):
            if lease.held:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_stop())
    with fleet.b.read() as conn:
        assert current_lease(conn, JOB, datetime.now(UTC)) is None  # another node can take over at once
    assert JobLease(fleet.b, JOB, "node-b", TTL).hold(datetime.now(UTC))


def test_queueing_the_same_alert_at_once_makes_one_row_and_no_error(fleet: Fleet) -> None:
    """Two nodes queue one key concurrently: the second waits for the first and then yields, instead of
    failing its whole transaction on the primary key (PostgreSQL; SQLite serialises the writers)."""
    now = fleet.now()
    results: list[object] = []

    def queue_on_b() -> None:
        try:
            with fleet.b.write() as conn:
                results.append(alerts.enqueue(conn, [("k", "p")], {"k": {"text": "b"}}, now))
        except Exception as exc:
            results.append(exc)

    with fleet.a.write() as conn:
        assert alerts.enqueue(conn, [("k", "p")], {"k": {"text": "a"}}, now) == 1
        other = threading.Thread(target=queue_on_b)
        other.start()
        other.join(timeout=0.3)  # b is now waiting on a's uncommitted row
    other.join(timeout=30)
    assert results == [0]
    assert fleet.queued() == ["k"]


def test_a_delivery_is_claimed_once(fleet: Fleet) -> None:
    now = fleet.now()
    with fleet.a.write() as conn:
        alerts.enqueue(conn, [("k", "p")], {"k": {}}, now)
    with fleet.a.read() as conn:
        seen = conn.execute(select(schema.alert_deliveries.c.next_attempt_at)).scalar_one()
    with fleet.a.status_write() as conn:
        assert alerts.claim_delivery(conn, "k", seen, now + timedelta(minutes=5))
    with fleet.b.status_write() as conn:
        assert not alerts.claim_delivery(conn, "k", seen, now + timedelta(minutes=5))  # read before a's claim
