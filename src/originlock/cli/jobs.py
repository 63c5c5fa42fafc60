"""The periodic jobs a control-plane process runs (``serve`` and ``api``): certificate-expiry alerts and AOP
auto-rotation. Every node starts them; a lease per job in the shared store picks the one node that does the
work in each period (server/leadership.py), so a fleet sends each alert once and rotates once."""

from __future__ import annotations

import asyncio

from originlock.server import alerts_job, rotation_job
from originlock.server.alerts_job import ExpiryAlerts
from originlock.server.leadership import JobLease
from originlock.server.rotation_job import AutoRotation
from originlock.store.db import Store

__all__ = ["start_periodic_jobs"]


def start_periodic_jobs(store: Store, node: str, alert_interval: float) -> list[asyncio.Task[None]]:
    """Start both jobs on the running loop; stop them with ``server.fleet_node.stop_tasks``."""
    alerts = ExpiryAlerts(
        store, interval=alert_interval, lease=JobLease.for_period(store, alerts_job.JOB, node, alert_interval)
    )
    rotation = AutoRotation(
        store, lease=JobLease.for_period(store, rotation_job.JOB, node, rotation_job.INTERVAL_SECONDS)
    )
    return [
        asyncio.create_task(alerts.run(), name="originlock-expiry-alerts"),
        asyncio.create_task(rotation.run(), name="originlock-auto-rotation"),
    ]
