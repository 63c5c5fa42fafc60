#!/usr/bin/env python3
"""What a new visitor TLS connection makes and touches in the edge process: allocations and functions, per
connection, product against the floor relay (issue 11, visitor7).

The new-visitor shape costs the product only ≈ 41-49k instructions above the floor relay (of 2.7M) but
60-100 µs of user CPU: instructions running slower. The suspicion is footprint: objects made per connection
and code spread over many functions, so that libcrypto's handshake then runs with colder caches. This counts
that footprint, from the same two callgrind runs per edge as ``visitor_conn_instructions.py --by-object``
(same child, same client, two connection counts, the difference divided by the difference):

- allocator calls per connection: CPython's object allocator (``_PyObject_Malloc`` / ``Calloc`` /
  ``Realloc`` / ``Free``: every Python object, small buffer and dict table) and libc's ``malloc`` /
  ``calloc`` / ``realloc`` / ``free`` (OpenSSL's, uvloop's and Python's large blocks), and who calls
  ``PyObject_Malloc`` most (which kinds of object);
- the instructions run inside the event loop (``uv_run``, inclusive: start-up left out, unlike the
  whole process's total, whose start-ups differ by millions between runs);
- distinct functions called per connection (a function counts when its calls grew by at least half the
  connections), by shared object; ``--list "originlock (mypyc),???"`` names those of the groups given.

    PYTHONPATH=TREE python bench/visitor_conn_footprint.py --kind floor,product --serve-like --sni 127.0.0.1

Needs valgrind and nginx. ``--cache-sim`` of ``visitor_conn_instructions.py`` gives the simulated cache
misses of the same shape (cachegrind sizes its caches from the host CPU: ``lscpu``'s L1 and last level).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from valgrind_counts import _object_group, callgrind_command
from visitor_conn_instructions import ROOT, Options, _run

#: CPython's object allocator (pymalloc) entry points, and libc's.
PY_ALLOC = ("_PyObject_Malloc [python]", "_PyObject_Calloc [python]", "_PyObject_Realloc [python]")
PY_FREE = ("_PyObject_Free [python]",)
C_ALLOC = ("malloc [libc]", "calloc [libc]", "realloc [libc]")
C_FREE = ("free [libc]",)


class Profile:
    """Call counts from one uncompressed callgrind output file, by function: ``"name [object group]"`` (one
    name may be in two objects: cryptography's wheel links its own OpenSSL, with the same symbols)."""

    def __init__(self, out: Path) -> None:
        #: Calls received, by callee.
        self.calls: dict[str, int] = defaultdict(int)
        #: Calls by (caller, callee).
        self.edges: dict[tuple[str, str], int] = defaultdict(int)
        #: The shared-object group of each function.
        self.group: dict[str, str] = {}
        #: Instructions inside the event loop's ``uv_run`` (inclusive): everything after start-up.
        self.served = 0
        served = False
        fn = callee = ""
        ob = cob = "?"
        with out.open() as f:
            for line in f:
                if line.startswith("fn="):
                    fn = self._name(line[3:].strip(), ob)
                    cob = ob
                elif line.startswith("ob="):
                    ob = cob = _object_group(line[3:].strip())
                elif line.startswith("cob="):
                    cob = _object_group(line[4:].strip())
                elif line.startswith("cfn="):
                    callee = self._name(line[4:].strip(), cob)
                elif line.startswith("calls="):
                    count = int(line[6:].split()[0])
                    self.calls[callee] += count
                    self.edges[fn, callee] += count
                    cob = ob
                    served = callee.startswith("uv_run ")
                elif served:  # the inclusive cost of that call
                    self.served += int(line.split()[1])
                    served = False

    def _name(self, name: str, group: str) -> str:
        key = f"{name} [{group}]"
        self.group[key] = group
        return key


def _per(low: dict[str, int], high: dict[str, int], n: int, key: str) -> float:
    return (high.get(key, 0) - low.get(key, 0)) / n


def report(kind: str, low: Profile, high: Profile, n: int, listed: tuple[str, ...] = ()) -> None:
    def calls(names: tuple[str, ...]) -> float:
        return sum(_per(low.calls, high.calls, n, name) for name in names)

    print(f"{kind}: per new visitor connection, {(high.served - low.served) / n:,.0f} instructions in uv_run")
    print(f"  CPython object allocator: {calls(PY_ALLOC):8.1f} allocations, {calls(PY_FREE):8.1f} frees")
    print(f"  libc malloc:              {calls(C_ALLOC):8.1f} allocations, {calls(C_FREE):8.1f} frees")
    makers: dict[str, float] = defaultdict(float)
    for (caller, callee), count in high.edges.items():
        if callee == "PyObject_Malloc [python]":
            makers[caller] += (count - low.edges.get((caller, callee), 0)) / n
    top = sorted(((v, k.rsplit(" [", 1)[0]) for k, v in makers.items() if v >= 1), reverse=True)[:12]
    print("  PyObject_Malloc's callers: " + ", ".join(f"{k} {v:.1f}" for v, k in top))
    called = {fn for fn in high.calls if _per(low.calls, high.calls, n, fn) >= 0.5}
    by_group: dict[str, int] = defaultdict(int)
    for fn in called:
        by_group[high.group.get(fn, "?")] += 1
    print(f"  distinct functions called per connection: {len(called)}")
    for count, group in sorted(((v, k) for k, v in by_group.items()), reverse=True):
        print(f"    {group:<28} {count:6}")
    for group in listed:
        names = sorted(fn for fn in called if high.group.get(fn) == group)
        print(f"  {group}'s functions: " + " ".join(name.rsplit(" [", 1)[0] for name in names))


def _groups(listed: str) -> tuple[str, ...]:
    return tuple(group for group in listed.split(",") if group)


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", default="10,100", help="the two connection counts, low,high")
    parser.add_argument("--kind", default="floor,product", help="comma-separated: floor, product")
    parser.add_argument("--sni", default="a.example.test")
    parser.add_argument("--serve-like", action="store_true", help="product: access log file and WAF recorder")
    parser.add_argument("--list", default="", help="comma-separated object groups whose functions are listed")
    parser.add_argument("--keep", help="copy the callgrind outputs into this directory (for callgrind_annotate)")
    parser.add_argument("--files", help="low,high: report on two kept callgrind outputs instead of running")
    parser.add_argument("--python", help="the measured interpreter (a venv's bin/python); default: this one")
    args = parser.parse_args()
    low, high = (int(n) for n in args.connections.split(","))
    options = Options(python=args.python, sni=args.sni, serve_like=args.serve_like)
    if args.files:
        low_file, high_file = args.files.split(",")
        report("files", Profile(Path(low_file)), Profile(Path(high_file)), high - low, _groups(args.list))
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for kind in args.kind.split(","):
            options.kind = kind
            profiles = []
            for count in (low, high):
                out = tmp / f"callgrind-{kind}-{count}"
                _run(options, callgrind_command(out), tmp, count)
                profiles.append(Profile(out))
                if args.keep:
                    shutil.copy(out, Path(args.keep) / out.name)
            report(kind, profiles[0], profiles[1], high - low, _groups(args.list))


if __name__ == "__main__":
    main()
