"""``product_vs_nginx.py --callgrind DIR``: ``originlock serve`` and the floor relays run under callgrind, with
collection switched on only while wrk measures them, so each measured run gives the instructions per request
of the product as installed, driven as in the timed runs (its other threads, the tick, the access log's
flushes and wrk's interleaving included). The in-process counters (``visitor_conn_instructions.py`` and the
others) count a harness: this says whether they miss something the product does.

Wall-clock figures of such a run mean nothing (valgrind runs the code ~50 times slower); compare the
instruction columns, product against the floor relay of the same shape. Work that comes per second (the
tick, the store's polling thread) or once (a hostname's first TLS context, ~7M instructions each under
valgrind) is spread over ~50 times fewer requests than natively, so a shape's figure is an upper bound: on
session 15's VM the resumed origin dial came out 68k above the floor (the in-process counter: 48k), the
new visitor connection 818k above it, of which six first-use ``load_cert_chain`` calls alone were ≈ 220k
per request (docs/performance.md, "Session 15's end").
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

#: Interpreter start-up, imports and configuration run uninstrumented (fast): only the measured runs count.
_OPTIONS = ("--tool=callgrind", "--instr-atstart=no", "--compress-strings=no", "--compress-pos=no")


def under_callgrind(argv: list[str], out_dir: Path, name: str) -> list[str]:
    """``argv`` run by valgrind, its dumps written as ``out_dir/name.PID.N``."""
    return ["valgrind", *_OPTIONS, f"--callgrind-out-file={out_dir}/{name}.%p", *argv]


def _control(pid: int, *options: str) -> None:
    subprocess.run(["callgrind_control", *options, str(pid)], check=True, capture_output=True, timeout=120)


def start_counting(pids: list[int]) -> None:
    for pid in pids:
        _control(pid, "--zero")
        _control(pid, "--instr=on")


def stop_counting(pids: list[int], out_dir: Path) -> int:
    """Instructions since :func:`start_counting`, over ``pids`` (each dumps what it collected)."""
    total = 0
    for pid in pids:
        _control(pid, "--instr=off")
        before = set(out_dir.glob(f"*.{pid}.*"))
        _control(pid, "--dump")
        deadline = time.monotonic() + 30
        while not (written := set(out_dir.glob(f"*.{pid}.*")) - before) and time.monotonic() < deadline:
            time.sleep(0.1)
        (dump,) = written
        total += _instructions(dump)
    return total


def _instructions(dump: Path) -> int:
    # A dump made by callgrind_control has "summary: 0" and the count in "totals:".
    found = re.search(r"^totals:\s+(\d+)", dump.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"no totals in {dump}")
    return int(found.group(1))
