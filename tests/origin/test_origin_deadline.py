"""Deadline: re-arming without timer churn, never late, never early."""

from __future__ import annotations

import asyncio

from originlock.origin.deadline import Deadline


def test_deadline_fires_once_at_the_last_armed_time() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        deadline = Deadline(loop, lambda: fired.append(loop.time()))
        start = loop.time()
        deadline.arm(0.05)
        await asyncio.sleep(0.03)
        deadline.arm(0.05)  # moved later: the first callback re-schedules itself
        await asyncio.sleep(0.15)
        return [t - start for t in fired]

    fired = asyncio.run(main())
    assert len(fired) == 1
    assert 0.075 <= fired[0] < 0.15


def test_disarmed_deadline_does_not_fire_and_earlier_rearm_is_honoured() -> None:
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        deadline = Deadline(loop, lambda: fired.append(loop.time()))
        deadline.arm(0.05)
        deadline.disarm()
        await asyncio.sleep(0.08)
        assert not fired
        start = loop.time()
        deadline.arm(1.0)
        deadline.arm(0.02)  # earlier than the scheduled callback: rescheduled, not late
        await asyncio.sleep(0.1)
        deadline.cancel()
        return len(fired), fired[0] - start

    count, after = asyncio.run(main())
    assert count == 1
    assert after < 0.09
