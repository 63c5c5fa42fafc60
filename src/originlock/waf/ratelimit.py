"""Rate-limit counting for the ``http_ratelimit`` phase: pure state, clock passed in.

Cloudflare counts per *characteristics* key (``ip.src``, a header, ...) and per edge node
(``cf.colo.id``; here one edge process is one node). We use its sliding-window estimate: the rate
is ``previous_window_count * (1 - elapsed/period) + current_window_count``. When the rate exceeds
``requests_per_period`` the key is *mitigated*: with ``mitigation_timeout > 0`` every matching
request is refused until the timeout ends; with ``0`` (throttle) only requests above the rate are.

No clock is read here: callers pass ``now`` (seconds, monotonic or wall, as long as it is one
clock), so tests drive time explicitly and the edge decides where time comes from.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

__all__ = ["PERIODS", "TIMEOUTS", "RateLimitSpec", "RateLimiter"]

PERIODS: Final = frozenset({10, 60, 120, 300, 600, 3600})
TIMEOUTS: Final = frozenset({0, 10, 60, 120, 300, 600, 3600, 86400})
_PRUNE_EVERY: Final = 1024
"""Hits between sweeps of idle keys; bounds memory without a timer."""


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """The ``ratelimit`` object of a rule (spec §2.6)."""

    characteristics: tuple[str, ...]
    period: int
    requests_per_period: int
    mitigation_timeout: int = 0
    counting_expression: str = ""
    requests_to_origin: bool = False

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"period must be one of {sorted(PERIODS)}")
        if self.mitigation_timeout not in TIMEOUTS:
            raise ValueError(f"mitigation_timeout must be one of {sorted(TIMEOUTS)}")
        if self.requests_per_period < 1:
            raise ValueError("requests_per_period must be at least 1")
        if "cf.colo.id" not in self.characteristics:
            raise ValueError('characteristics must include "cf.colo.id"')


@dataclass(slots=True)
class _Counter:
    window: int
    period: int
    current: int = 0
    previous: int = 0
    mitigated_until: float = 0.0


class RateLimiter:
    """Counters for every (rule, key) pair seen by this edge node."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, Hashable], _Counter] = {}
        self._hits = 0

    def hit(self, rule_id: str, key: Hashable, spec: RateLimitSpec, now: float, *, count: bool = True) -> bool:
        """Record one request for ``key`` under rule ``rule_id``; True when it must be mitigated.

        Args:
            count: False for a request that matches the rule but not its counting expression:
                it is checked against the current state without being counted.
        """
        self._hits += 1
        if self._hits % _PRUNE_EVERY == 0:
            self.prune(now)
        window = int(now // spec.period)
        counter = self._counters.get((rule_id, key))
        if counter is None:
            counter = self._counters[(rule_id, key)] = _Counter(window, spec.period)
        if counter.window != window:
            counter.previous = counter.current if counter.window == window - 1 else 0
            counter.current = 0
            counter.window = window
        if now < counter.mitigated_until:
            if count:
                counter.current += 1
            return True
        if count:
            counter.current += 1
        elapsed = (now - window * spec.period) / spec.period
        rate = counter.previous * (1.0 - elapsed) + counter.current
        if rate <= spec.requests_per_period:
            return False
        if spec.mitigation_timeout:
            counter.mitigated_until = now + spec.mitigation_timeout
        return True

    def prune(self, now: float) -> None:
        """Forget keys that are not mitigated and whose last window is two or more periods old."""
        stale = [
            key
            for key, c in self._counters.items()
            if c.mitigated_until <= now and int(now // c.period) - c.window >= 2
        ]
        for key in stale:
            del self._counters[key]

    def __len__(self) -> int:
        return len(self._counters)
