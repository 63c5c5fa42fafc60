"""connect_within: a connection within the wait, the connect's own error, or ConnectTimedOut, and a late
connection closed by its thread rather than leaked or handed out."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from originlock.store.connect_wait import ConnectTimedOut, _Attempt, connect_within


class Connection:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


def test_a_prompt_connect_is_returned() -> None:
    made = Connection()
    assert connect_within(lambda: made, 1.0) is made
    assert not made.closed.is_set()


def test_the_connects_own_error_is_raised() -> None:
    def refused() -> Connection:
        raise ConnectionRefusedError("refused")

    with pytest.raises(ConnectionRefusedError):
        connect_within(refused, 1.0)


def test_a_late_connection_is_closed_by_its_thread_and_the_caller_told_at_the_deadline() -> None:
    release = threading.Event()
    made = Connection()

    def slow() -> Connection:
        release.wait(5)
        return made

    started = time.monotonic()
    with pytest.raises(ConnectTimedOut):
        connect_within(slow, 0.2)
    assert 0.15 < time.monotonic() - started < 1.0
    release.set()
    assert made.closed.wait(5), "the late connection was not closed"


def test_no_reference_cycle_is_left_behind() -> None:
    """The edge's connections are freed by reference counting (tests/edge/test_edge_connection_cycles.py counts
    what the collector finds in the whole process): an attempt must not need the collector either."""

    def refused() -> Connection:
        raise ConnectionRefusedError("refused")

    def late() -> Connection:
        time.sleep(0.1)
        raise ConnectionRefusedError("refused late")

    gc.collect()
    gc.disable()
    try:
        connect_within(Connection, 1.0)
        with pytest.raises(ConnectionRefusedError):
            connect_within(refused, 1.0)
        with pytest.raises(ConnectTimedOut):
            connect_within(late, 0.01)
        time.sleep(0.3)  # the late attempt's thread has finished
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, _Attempt | BaseException)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
