"""Automatic rotation with a clock moved forward (never slept through): renew at 2/3 of the lifetime,
retire the old certificate after the overlap window, same zone CA throughout, and the edge always holds
a valid certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import select

from originlock.api.app import create_app
from originlock.server.bootstrap import bootstrap
from originlock.server.leadership import JobLease
from originlock.server.rotation_job import JOB, AutoRotation
from originlock.store import schema
from originlock.store.auto_rotation import LEAF_DAYS, OVERLAP
from originlock.store.compile import compile_snapshot
from originlock.store.db import Store
from originlock.store.dns import RecordInput, create_record


def test_auto_rotation_over_a_year(store_url: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    deployment = bootstrap(tmp_path / "data", store_url)
    store = deployment.store
    clock = {"now": datetime.now(UTC)}
    client = TestClient(create_app(store, clock=lambda: clock["now"]))
    h = {"Authorization": f"Bearer {deployment.new_admin_token}"}
    zone = client.post("/client/v4/zones", json={"name": "auto.test"}, headers=h).json()["result"]["id"]
    with store.write() as conn:
        create_record(conn, zone, RecordInput("A", "app", "127.0.0.1", proxied=True))

    r = client.patch(f"/client/v4/zones/{zone}/settings/aop_auto_rotation", json={"value": "on"}, headers=h)
    assert r.status_code == 200 and r.json()["result"]["value"] == "on"
    certs = client.get(f"/client/v4/zones/{zone}/origin_tls_client_auth", headers=h).json()["result"]
    assert len(certs) == 1 and certs[0]["status"] == "active"
    assert client.get(f"/client/v4/zones/{zone}/origin_tls_client_auth/settings", headers=h).json()["result"] == {
        "enabled": True
    }
    identity = client.get(f"/client/v4/zones/{zone}/origin_tls_client_auth/edge_identity", headers=h).json()["result"]
    assert identity["source"] == "zone" and "BEGIN CERTIFICATE" in identity["ca_bundle"]
    zone_ca = x509.load_pem_x509_certificate(identity["ca_bundle"].encode())

    job = AutoRotation(store, clock=lambda: clock["now"])
    seen = {certs[0]["id"]}
    step = timedelta(days=1)
    end = clock["now"] + timedelta(days=365)
    renewals = 0
    while clock["now"] < end:
        clock["now"] += step
        for change in job.tick():
            renewals += bool(change.issued)
        snapshot = compile_snapshot(store, clock["now"])
        presented = snapshot.routes["app.auto.test"].client_cert
        # The edge always has a usable certificate, issued by the same zone CA.
        assert presented is not None and presented.not_after > clock["now"] + timedelta(days=LEAF_DAYS / 6)
        leaf = x509.load_pem_x509_certificate(presented.chain_pem)
        leaf.verify_directly_issued_by(zone_ca)
        seen.add(presented.id)
        with store.read() as conn:
            active = conn.execute(select(schema.aop_certs.c.id).where(schema.aop_certs.c.zone_id == zone)).all()
        assert 1 <= len(active) <= 2  # old and new only during the overlap window
    assert renewals == len(seen) - 1 >= 5  # every 60 days over a year
    assert job.tick() == []  # nothing due right after the last step: no write, no generation bump
    assert timedelta(days=LEAF_DAYS) * (1 / 3) > OVERLAP  # retired well before it would expire
    store.close()


def test_in_a_fleet_one_node_rotates_and_another_takes_over(store_url: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    deployment = bootstrap(tmp_path / "data", store_url)
    store_a = deployment.store
    store_b = Store(deployment.store_url, store_a.sealer)  # a second node on the same database
    client = TestClient(create_app(store_a))
    h = {"Authorization": f"Bearer {deployment.new_admin_token}"}
    zone = client.post("/client/v4/zones", json={"name": "fleet.test"}, headers=h).json()["result"]["id"]
    r = client.patch(f"/client/v4/zones/{zone}/settings/aop_auto_rotation", json={"value": "on"}, headers=h)
    assert r.status_code == 200

    def certs() -> list[str]:
        with store_a.read() as conn:
            return list(conn.execute(select(schema.aop_certs.c.id).where(schema.aop_certs.c.zone_id == zone)).scalars())

    (first,) = certs()
    with store_a.read() as conn:
        pem = conn.execute(select(schema.aop_certs.c.certificate).where(schema.aop_certs.c.id == first)).scalar_one()
    leaf = x509.load_pem_x509_certificate(pem.encode())
    renew_at = leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) * (2 / 3)
    ttl = timedelta(seconds=90)
    clock = {"now": renew_at - timedelta(seconds=10)}
    node_a = AutoRotation(store_a, clock=lambda: clock["now"], lease=JobLease(store_a, JOB, "node-a", ttl))
    node_b = AutoRotation(store_b, clock=lambda: clock["now"], lease=JobLease(store_b, JOB, "node-b", ttl))
    try:
        assert node_a.tick() == []  # nothing due yet; node a runs the job
        clock["now"] = renew_at + timedelta(seconds=10)
        generation = store_a.generation()
        # Node a has died. The renewal is due, but the job is a's until its lease runs out: b issues nothing.
        assert node_b.tick() == [] and certs() == [first]
        assert store_a.generation() == generation  # standing by writes nothing the edges would rebuild for
        clock["now"] = renew_at - timedelta(seconds=10) + ttl
        (change,) = node_b.tick()
        assert (
            change.zone_id == zone and change.issued is not None and sorted(certs()) == sorted([first, change.issued])
        )
        clock["now"] += timedelta(seconds=1)
        assert node_a.tick() == []  # node a coming back stands by: still one renewal
        assert len(certs()) == 2
    finally:
        store_b.close()
        store_a.close()
