#!/usr/bin/env python3
"""Where a compiled (mypyc) edge spends its CPU: ``perf`` samples attributed to our functions.

py-spy and cProfile cannot see into mypyc-compiled code, and a flat ``perf report`` spreads it over
the C runtime (allocation, dict lookups, reference counting). This charges every sample to the nearest
compiled function of ours on its stack (``CPyDef_module___function``), so a function's share includes
the runtime work it caused, and lists the leaf symbols that make it up.

    perf record --call-graph dwarf,16384 -F 999 -p <edge pid> -o edge.perf -- sleep 4
    python bench/perf_owners.py edge.perf [--top 40]

The edge pid: the ``--compare-src`` child of ``edge_vs_nginx.py`` (its /proc/PID/maps names the tree),
or ``bench/edge_inprocess.py --child TREE`` run under ``perf record`` directly.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess

_FRAME = re.compile(r"(\S+?)(\+0x[0-9a-f]+)? \((.*)\)$")


def _frames(block: str) -> list[tuple[str, str]]:
    out = []
    for line in block.strip().splitlines()[1:]:
        parts = line.split(None, 1)
        if len(parts) == 2:
            match = _FRAME.match(parts[1])
            out.append((match.group(1), match.group(3)) if match else (parts[1], ""))
    return out


def _owner(frames: list[tuple[str, str]]) -> str:
    for name, dso in frames:
        if name.startswith(("CPyDef_", "CPyPy_")):
            return name.replace("CPyPy_", "CPyDef_").removeprefix("CPyDef_")
        if "httptools" in dso or "parser.cpython" in dso:
            return "(httptools)"
        if name.startswith("_PyEval_EvalFrameDefault"):
            return "(interpreted: ssl.py, WAF hook, event loop glue)"
    dso = frames[0][1] if frames else ""
    for marker, label in (("kernel", "(kernel)"), ("libssl", "(TLS)"), ("libcrypto", "(TLS)"), ("loop.", "(uvloop)")):
        if marker in dso:
            return label
    return f"(other: {dso.rsplit('/', 1)[-1]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="perf.data recorded with --call-graph dwarf")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    script = subprocess.run(["perf", "script", "-i", args.data], capture_output=True, text=True, check=True).stdout
    owners: collections.Counter[str] = collections.Counter()
    leaves: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for block in script.split("\n\n"):
        frames = _frames(block)
        if frames:
            owner = _owner(frames)
            owners[owner] += 1
            leaves[owner][frames[0][0]] += 1
    total = sum(owners.values()) or 1
    print(f"{total} samples")
    for owner, count in owners.most_common(args.top):
        top = ", ".join(f"{leaf[:40]} {n * 100 // count}%" for leaf, n in leaves[owner].most_common(3))
        print(f"{count * 100 / total:5.1f}%  {owner[:60]:60s} {top}")


if __name__ == "__main__":
    main()
