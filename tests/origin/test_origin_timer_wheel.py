"""TimerWheel: visitor deadlines behind one loop timer, never early, at most a resolution late."""

from __future__ import annotations

import asyncio

from originlock.origin.deadline import WHEEL_RESOLUTION, TimerWheel


class _CountingLoop:
    """The loop's time and timers, with the timers the wheel starts counted."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.timers = 0

    def time(self) -> float:
        return self.loop.time()

    def call_at(self, when: float, callback: object) -> asyncio.TimerHandle:
        self.timers += 1
        return self.loop.call_at(when, callback)  # type: ignore[arg-type]


def test_many_deadlines_share_one_loop_timer_and_fire_in_time() -> None:
    async def main() -> tuple[int, list[float], int]:
        loop = asyncio.get_running_loop()
        counting = _CountingLoop(loop)
        wheel = TimerWheel(counting)  # type: ignore[arg-type]
        late: list[float] = []
        for _ in range(50):  # arrivals over 50 ms, all with the same timeout, as new visitors are
            at = loop.time() + 0.1
            wheel.deadline(lambda at=at: late.append(loop.time() - at)).arm(0.1)  # type: ignore[misc]
            await asyncio.sleep(0.001)
        timers_while_arming = counting.timers
        await asyncio.sleep(0.3)
        return timers_while_arming, late, len(wheel)

    timers, late, left = asyncio.run(main())
    assert timers == 1  # a per-connection timer would be 50
    assert len(late) == 50
    assert min(late) >= -0.002  # never early (the loop's clock granularity aside)
    assert max(late) < WHEEL_RESOLUTION + 0.05
    assert left == 0


def test_rearm_later_disarm_and_cancel() -> None:
    async def main() -> tuple[list[str], int]:
        loop = asyncio.get_running_loop()
        wheel = TimerWheel(loop)
        fired: list[str] = []
        moved = wheel.deadline(lambda: fired.append(f"moved {loop.time() - start:.2f}"))
        disarmed = wheel.deadline(lambda: fired.append("disarmed"))
        cancelled = wheel.deadline(lambda: fired.append("cancelled"))
        earlier = wheel.deadline(lambda: fired.append(f"earlier {loop.time() - start:.2f}"))
        start = loop.time()
        for deadline in (moved, disarmed, cancelled):
            deadline.arm(0.05)
        earlier.arm(5.0)
        earlier.arm(0.1)  # moved earlier: leaves its later bucket
        await asyncio.sleep(0.02)
        moved.arm(0.2)  # moved later: found at the first bucket, registered again
        disarmed.disarm()
        cancelled.cancel()
        assert moved.armed and not disarmed.armed and not cancelled.armed
        await asyncio.sleep(0.4)
        return fired, len(wheel)

    fired, left = asyncio.run(main())
    assert [name.split()[0] for name in fired] == ["earlier", "moved"]
    assert 0.1 <= float(fired[0].split()[1]) < 0.1 + WHEEL_RESOLUTION + 0.05
    assert 0.22 <= float(fired[1].split()[1]) < 0.22 + WHEEL_RESOLUTION + 0.05
    assert left == 0
