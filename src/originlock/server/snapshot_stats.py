"""What a node reports about the snapshot it serves: the source's statistics and the trace of each change
from its writer's commit to this node serving it (``/metrics``, ``/healthz/snapshot``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RECENT_CHANGES", "ChangeTrace", "SourceStatistics"]


@dataclass(frozen=True)
class SourceStatistics:
    """What ``/metrics`` and the health endpoint report about the snapshot this process serves."""

    generation: int
    #: Wall-clock time of the last time the source knew it was current (a poll or a rebuild succeeded).
    confirmed_at: float
    #: Whether the snapshot came from the last-known-good file and the store has not answered since.
    from_disk: bool
    rebuilds: int
    full_rebuilds: int
    rebuild_seconds_total: float
    last_rebuild_seconds: float
    zones: int
    routes: int
    #: Changes served that carried their writer's clock, the sum of their delays and the last one's.
    changes_timed: int = 0
    change_delay_seconds_total: float = 0.0
    last_change_delay_seconds: float = 0.0
    #: The last few changes served, each with the time of its stages (oldest first).
    recent_changes: tuple[ChangeTrace, ...] = ()

    def stale_seconds(self, now: float) -> float:
        return max(0.0, now - self.confirmed_at)


@dataclass(frozen=True)
class ChangeTrace:
    """Where the time went between a write's commit and this node serving it (wall-clock seconds).

    ``written`` is the writer's clock (another node's, in a fleet: skew shows up in ``notified``).
    """

    generation: int
    zones: int
    written: float | None
    #: The notification (or this process's own commit hook) arrived.
    received: float
    #: The worker thread began the refresh; then its queries and compile were done; then installed (the
    #: edge serves it from its next request on).
    started: float
    compiled: float
    installed: float

    def stages_ms(self) -> dict[str, float | int | None]:
        def ms(a: float | None, b: float) -> float | None:
            return None if a is None else round((b - a) * 1000, 2)

        return {
            "generation": self.generation,
            "zones": self.zones,
            "notified_ms": ms(self.written, self.received),
            "queued_ms": ms(self.received, self.started),
            "compile_ms": ms(self.started, self.compiled),
            "swap_ms": ms(self.compiled, self.installed),
            "total_ms": ms(self.written, self.installed),
        }


#: Change traces a source keeps for ``/healthz/snapshot``.
RECENT_CHANGES = 20
