"""Long snapshot work on a worker thread hands the interpreter to the event loop now and then.

CPython runs one thread at a time. A thread that wants to run asks the running one to let go and waits
up to 5 ms (``sys.getswitchinterval()``) for it, and with two busy worker threads (a whole rebuild and the
last-known-good save) the event loop lost most handoffs: requests waited 20-100 ms. A worker that sleeps
briefly every few thousand items gives the waiting loop the interpreter at once.
"""

from __future__ import annotations

import time

__all__ = ["SLICE", "yield_interpreter"]

#: Items (rows, routes, zones) a worker handles between two yields: about a millisecond of work.
SLICE = 2000
#: Long enough for the waiting thread to take the interpreter, short enough to cost a 100k-hostname build
#: about 10 ms in all.
PAUSE_SECONDS = 0.0002


def yield_interpreter() -> None:
    time.sleep(PAUSE_SECONDS)
