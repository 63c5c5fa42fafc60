"""TimerWheel: visitor deadlines behind one loop timer, never early, at most a resolution late.

Driven by a fake loop whose clock the test moves, so that a loaded machine cannot make them late; one test on
the real loop checks that the wheel runs there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from originlock.origin.deadline import WHEEL_RESOLUTION, TimerWheel


class _Handle(asyncio.TimerHandle):
    """A TimerHandle (the compiled wheel checks the type of what ``call_at`` returns) run by the test."""

    def __init__(self, when: float, callback: Callable[[], None], loop: _FakeLoop) -> None:
        super().__init__(when, callback, (), cast(asyncio.AbstractEventLoop, loop))
        self.at = when
        self.callback = callback
        self.stopped = False

    def cancel(self) -> None:
        self.stopped = True


class _FakeLoop:
    """``time`` and ``call_at``: the clock moves when the test says, timers run in order as it passes them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[_Handle] = []
        self.started = 0

    def time(self) -> float:
        return self.now

    def get_debug(self) -> bool:
        return False

    def call_at(self, when: float, callback: Callable[[], None]) -> _Handle:
        self.started += 1
        handle = _Handle(when, callback, self)
        self.timers.append(handle)
        return handle

    def advance(self, seconds: float, step: float = 0.001) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for handle in sorted(self.timers, key=lambda h: h.at):
                if handle.at <= self.now and not handle.stopped:
                    self.timers.remove(handle)
                    handle.callback()
            self.timers = [h for h in self.timers if not h.stopped]


def _wheel() -> tuple[_FakeLoop, TimerWheel]:
    loop = _FakeLoop()
    return loop, TimerWheel(loop)  # type: ignore[arg-type]


def test_many_deadlines_share_one_loop_timer_never_early_at_most_a_bucket_late() -> None:
    loop, wheel = _wheel()
    late: list[float] = []
    for _ in range(50):  # arrivals over 50 ms, all with the same timeout, as new visitors are
        at = loop.now + 0.1

        def expired(at: float = at) -> None:
            late.append(loop.now - at)

        wheel.deadline(expired).arm(0.1)
        loop.advance(0.001)
    assert loop.started == 1  # a timer per connection would be 50
    loop.advance(0.3)
    assert len(late) == 50
    assert min(late) >= 0  # never early
    assert max(late) <= WHEEL_RESOLUTION + 0.002  # at most a bucket (and the fake clock's step) late
    assert len(wheel) == 0
    assert loop.started <= 4  # one per bucket that had deadlines, not one per deadline


def test_rearm_later_earlier_disarm_and_cancel() -> None:
    loop, wheel = _wheel()
    start = loop.now
    fired: list[tuple[str, float]] = []
    names = ("moved", "disarmed", "cancelled", "earlier")

    def recorder(name: str) -> Callable[[], None]:
        return lambda: fired.append((name, loop.now - start))

    deadlines = {name: wheel.deadline(recorder(name)) for name in names}
    for name in ("moved", "disarmed", "cancelled"):
        deadlines[name].arm(0.05)
    deadlines["earlier"].arm(5.0)
    deadlines["earlier"].arm(0.1)  # moved earlier: leaves its later bucket
    loop.advance(0.02)
    deadlines["moved"].arm(0.2)  # moved later: found at its first bucket, registered again
    deadlines["disarmed"].disarm()
    deadlines["cancelled"].cancel()
    assert deadlines["moved"].armed and not deadlines["disarmed"].armed and not deadlines["cancelled"].armed
    loop.advance(6.0)
    assert [name for name, _ in fired] == ["earlier", "moved"]
    assert 0.1 <= fired[0][1] <= 0.1 + WHEEL_RESOLUTION + 0.002
    assert 0.22 <= fired[1][1] <= 0.22 + WHEEL_RESOLUTION + 0.002
    assert len(wheel) == 0


def test_the_wheel_runs_on_a_real_loop() -> None:
    async def main() -> tuple[bool, int]:
        loop = asyncio.get_running_loop()
        wheel = TimerWheel(loop)
        done = loop.create_future()
        start = loop.time()
        wheel.deadline(lambda: done.set_result(loop.time() - start >= 0.05)).arm(0.05)
        not_early = await asyncio.wait_for(done, 10)
        return not_early, len(wheel)

    assert asyncio.run(main()) == (True, 0)


def test_buckets_emptied_by_cancellation_wake_nothing() -> None:
    """Origin dials cancel their connect deadline and closed connections their read deadline: after a run of
    them, the wheel does not wake once per bucket they passed through, but skips the emptied ones; a
    deadline still registered is woken for as before."""
    loop, wheel = _wheel()
    fired: list[float] = []
    deadlines = []
    for _ in range(40):  # one dial every bucket, each cancelled when the dial is over
        deadline = wheel.deadline(lambda: fired.append(loop.now))
        deadline.arm(19.0)
        deadlines.append(deadline)
        loop.advance(WHEEL_RESOLUTION)
    kept = wheel.deadline(lambda: fired.append(loop.now))
    kept.arm(30.0)
    for deadline in deadlines:
        deadline.cancel()
    started = loop.started
    loop.advance(40.0)
    assert len(fired) == 1 and fired[0] >= 1000.0 + 40 * WHEEL_RESOLUTION + 30.0
    assert loop.started - started <= 2  # the timer already set, then the kept deadline's: not one per bucket
    assert len(wheel) == 0
    assert not wheel._buckets and not wheel._order
