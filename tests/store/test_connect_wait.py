"""connect_within: a connection within the wait, the connect's own error, or ConnectTimedOut, and a late
connection closed by its thread rather than leaked or handed out."""

from __future__ import annotations

import gc
import threading
import time
import types

import pytest

from originlock.store import connect_wait
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


def _frame_of(obj: object, path: str) -> bool:
    if not isinstance(obj, types.FrameType):
        return False
    return obj.f_code.co_filename == path and obj.f_code.co_name != "connect_within"


def _refused_as_psycopg_does() -> Connection:
    """Raises an error its own frame keeps (psycopg's connect holds the last attempt's error in a local): the
    error and that frame are a reference cycle, as with the real driver."""
    try:
        raise ConnectionRefusedError("refused")
    except ConnectionRefusedError as exc:
        last = exc
    raise last


def test_no_reference_cycle_reaches_an_attempt() -> None:
    """The edge's connections are freed by reference counting (tests/edge/test_edge_connection_cycles.py counts
    what the collector finds in the whole process): a driver's cyclic error must not hold an attempt."""

    def late() -> Connection:
        time.sleep(0.1)
        return _refused_as_psycopg_does()

    gc.collect()
    gc.disable()
    try:
        connect_within(Connection, 1.0)
        with pytest.raises(ConnectionRefusedError):
            connect_within(_refused_as_psycopg_does, 1.0)
        with pytest.raises(ConnectTimedOut):
            connect_within(late, 0.01)
        time.sleep(0.3)  # the late attempt's thread has finished
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        # Other tests' threads may leave garbage of their own meanwhile (and a raised error's traceback holds
        # connect_within's frame, as any caller's): an attempt and the frames that held one must not be there.
        left = [repr(o) for o in gc.garbage if isinstance(o, _Attempt) or _frame_of(o, connect_wait.__file__)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
