#!/usr/bin/env python3
"""Instructions the access log adds per request, counted by valgrind: repeatable on a busy box.

``RequestBook.log`` (what the edge calls once per finished request) for a pooled request with origin
fields (the benchmark's usual line), run N times with the log writing to ``/dev/null`` (the line, the
buffer and the batched ``write``) and N times with it off; the difference, divided by N, is the access
log's own cost. Each is counted at two iteration counts and subtracted, so start-up drops out.

    python bench/edge_access_log.py [--src DIR ...] [--verdict]   # DIR: a src/ tree (e.g. an unpacked wheel)

``--verdict``: the request's zone has WAF rules that matched nothing (``ctx.waf`` set), as for the product
benchmark's zone with Origin Rules.

Needs valgrind. Rough conversion on this box: 1 µs ≈ 4,500-5,000 instructions of the edge's compiled code.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import sys
tree, iterations, logging, verdict = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "on", sys.argv[4] == "verdict"
if tree:
    sys.path.insert(0, tree)
import originlock
if tree and not originlock.__file__.startswith(tree):
    raise SystemExit(f"{tree} is not what was imported ({originlock.__file__})")
from originlock.edge.access_log import AccessLog
from originlock.edge.request_book import RequestBook
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived
from originlock.testing.pki import TestPki, make_route, make_snapshot

pki = TestPki()
route = make_route("a.bench.test", zone="bench.test")
snapshot = make_snapshot(pki, route, generation=42)
peer = OriginPeer("127.0.0.1", 8443, True, "a.bench.test", VerifyMode.STRICT, client_cert=pki.global_client)
request = RequestReceived(b"GET", b"/", b"1.1", [(b"Host", b"a.bench.test")], True, "none", False)
import time
ctx = RequestContext("8c3a5f0e12d94b7a-OLK", snapshot, "https", "127.0.0.1", 50123, time.monotonic())
ctx.host, ctx.route, ctx.status, ctx.bytes_sent = "a.bench.test", route, 200, 16
ctx.peer, ctx.origin_reused = peer, True
if verdict:
    # A zone with rules, none matching (the product benchmark's zone has Origin Rules): the shared no-match
    # verdict where the tree has one, else an empty one as evaluate_request returned.
    import originlock.waf
    ctx.waf = getattr(originlock.waf, "NO_MATCH", None) or originlock.waf.Verdict()
book = RequestBook(AccessLog("/dev/null" if logging else None))
log = book.log
for _ in range(iterations):
    log(ctx, request)
book.access_log.close()
"""


def instructions(tree: str, iterations: int, logging: bool, verdict: bool = False) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        child = Path(tmp) / "child.py"
        child.write_text(_CHILD)
        out = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={tmp}/out",
                os.path.realpath(sys.executable),
                str(child),
                tree,
                str(iterations),
                "on" if logging else "off",
                "verdict" if verdict else "none",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    if out.returncode != 0:
        raise SystemExit(f"the measured child failed:\n{out.stderr[-3000:]}")
    match = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", default=[], help="a src/ tree to measure (default: installed)")
    parser.add_argument(
        "--verdict", action="store_true", help="the request's zone has WAF rules, none matching (ctx.waf set)"
    )
    parser.add_argument("--iterations", type=int, default=20000, help="extra lines in the longer run")
    args = parser.parse_args()
    for tree in [os.path.abspath(t) for t in args.src] or [""]:
        short, long = 2000, 2000 + args.iterations
        per = {
            logging: (
                instructions(tree, long, logging, args.verdict) - instructions(tree, short, logging, args.verdict)
            )
            / (long - short)
            for logging in (True, False)
        }
        print(
            f"{tree or 'installed'}: {per[True] - per[False]:,.0f} instructions per line "
            f"(log on {per[True]:,.0f}, off {per[False]:,.0f} per request)"
        )


if __name__ == "__main__":
    main()
