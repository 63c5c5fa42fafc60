"""What /proc says a process did besides run: minor page faults and context switches (all its threads).

Valgrind counts a connection's instructions; these are the costs it cannot see. The product's user CPU per
new visitor connection was 25-30 % above the floor relay's for 1.5-3 % more instructions (docs/performance.md,
issue 11, session 14's end): faults and switches per request, beside the CPU, say whether the kernel's
bookkeeping of the process (memory handed back and touched again, a thread woken) is part of that.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class ProcCounts(NamedTuple):
    minor_faults: int
    voluntary_switches: int
    involuntary_switches: int

    def __sub__(self, other: tuple[int, ...]) -> ProcCounts:  # type: ignore[override]
        return ProcCounts(*(a - b for a, b in zip(self, other, strict=True)))


def read(pids: list[int]) -> ProcCounts:
    faults = voluntary = involuntary = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
                status = (task / "status").read_text()
            except OSError:  # the thread ended meanwhile
                continue
            faults += int(stat[7])  # minflt, field 10 counting from 1
            for line in status.splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    involuntary += int(line.split()[1])
    return ProcCounts(faults, voluntary, involuntary)
