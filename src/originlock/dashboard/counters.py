"""The edge's own counters, as the dashboard's live section reads them: requests by zone and status (every
edge process, from ``/metrics``' collectors) and WAF matches by zone and action, filtered to what a token
may see."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from originlock.dashboard.waf_events import EdgeWafActivity, WafEvent

__all__ = ["Counters", "read_counters"]

#: Metric families read from the app's registry (server/metrics.py and waf_events.py register them).
REQUESTS = "originlock_edge_requests"
PROCESSES = "originlock_edge_processes"


@dataclass(frozen=True)
class Counters:
    #: (zone, status) -> requests answered since the edge started.
    requests: dict[tuple[str, int], int]
    #: (zone, action) -> requests a WAF rule matched.
    waf: dict[tuple[str, str], int]
    #: Newest first.
    events: list[WafEvent]
    #: False when this process runs no edge (then there is nothing live to show).
    edge_running: bool


def read_counters(
    registry: CollectorRegistry, activity: EdgeWafActivity | None, zones: frozenset[str], waf_zones: frozenset[str]
) -> Counters:
    """Counts for the zones in ``zones`` (and WAF activity for ``waf_zones``) only."""
    requests: dict[tuple[str, int], int] = {}
    edge_running = False
    for metric in registry.collect():
        # serve registers the edge's collectors once the edge is up: their presence says it runs.
        edge_running = edge_running or metric.name == PROCESSES
        if metric.name != REQUESTS:
            continue
        for sample in metric.samples:
            if sample.name == f"{REQUESTS}_total" and sample.labels["zone"] in zones:
                requests[(sample.labels["zone"], int(sample.labels["status"]))] = int(sample.value)
    waf: dict[tuple[str, str], int] = {}
    events: list[WafEvent] = []
    if activity is not None:
        waf = {key: n for key, n in activity.counts().items() if key[0] in waf_zones}
        events = [e for e in activity.recent() if e.zone in waf_zones]
    return Counters(requests, waf, events, edge_running)
