#!/usr/bin/env python3
"""Instructions per request of the edge's whole Python request path, counted by valgrind: repeatable.

``bench/edge_inprocess.py``'s loop (one visitor and one pooled origin connection with fake transports;
wrk's request in, nginx's response back) run under ``valgrind --tool=cachegrind`` twice, with two
iteration counts; the difference divided by the difference in requests removes start-up (imports, key
generation). Instruction counts do not move with other jobs on the box, where CPU times on the shared
development box moved by up to 1.6x between identical runs: this is how sub-microsecond steps were told
apart (docs/performance.md, step 7). It is a proxy: the target is CPU per request end to end
(``bench/edge_vs_nginx.py``), and the harness's own fake loop and transports (interpreted) are included.

    python bench/edge_instructions.py [--src DIR ...] [--product [--waf25 | --ratelimit]]   # DIR: a src/ tree

``--product``: edge_inprocess.py's product configuration (the API-built snapshot, the access log on, the
dashboard's WafRecorder), i.e. what ``originlock serve`` runs per request. ``--waf25``: the same, to
the product benchmark's ``waf25`` hostname (a zone with 25 custom rules, none matching). ``--ratelimit``:
the pooled request, its zone also given (through the same API) one rate-limiting rule that counts every
request per ``ip.src`` and never mitigates (``RATELIMIT_RULE``): the ``http_ratelimit`` phase per request.

Needs valgrind (Debian: apt-get install valgrind). Takes about 30 s per tree.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent
#: ``--ratelimit``'s rule (the API's body): the ``http_ratelimit`` entry point of the pooled hostname's zone.
#: Every request matches and is counted; the rate never exceeds the limit, so every request reaches the origin.
RATELIMIT_RULE = {
    "action": "block",
    "expression": 'http.request.uri.path wildcard "/*"',
    "ratelimit": {
        "characteristics": ["cf.colo.id", "ip.src"],
        "period": 10,
        "requests_per_period": 1_000_000_000,
        "mitigation_timeout": 600,
    },
}
_CHILD = """
import sys
mode = sys.argv[3]
tree, iterations, product, waf25 = sys.argv[1], int(sys.argv[2]), mode != "floor", mode == "waf25"
if tree:
    sys.path.insert(0, tree)
sys.path.insert(0, {bench!r})
import originlock
if tree and not originlock.__file__.startswith(tree):
    raise SystemExit(f"{{tree}} is not what was imported ({{originlock.__file__}})")
import edge_inprocess
if mode == "ratelimit":
    import product_vs_nginx
    from edge_instructions import RATELIMIT_RULE
    configure = product_vs_nginx.configure

    def with_ratelimit(api, *args):
        # The product benchmark's configuration, then the rate-limiting rule on the pooled hostname's zone.
        out = configure(api, *args)
        zone = api.get("/zones", params={{"name": "bench.test"}}).json()["result"][0]["id"]
        put = api.put(f"/zones/{{zone}}/rulesets/phases/http_ratelimit/entrypoint", json={{"rules": [RATELIMIT_RULE]}})
        assert put.status_code == 200, put.text
        return out

    product_vs_nginx.configure = with_ratelimit  # edge_inprocess.product_snapshot imports it when called
edge_inprocess.measure(iterations, 1, product, waf25)
"""


def instructions(
    tree: str, iterations: int, product: bool = False, waf25: bool = False, ratelimit: bool = False
) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        child = Path(tmp) / "child.py"
        child.write_text(_CHILD.format(bench=str(_HERE)))
        run = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={tmp}/out",
                # the interpreter itself, not a launcher script (pyenv shims are shell scripts)
                os.path.realpath(sys.executable),
                str(child),
                tree,
                str(iterations),
                ("waf25" if waf25 else "ratelimit" if ratelimit else "product") if product else "floor",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    out = run.stderr
    if run.returncode != 0:  # e.g. edge_inprocess's guards: say why instead of a bare exit status
        raise SystemExit(f"the loop under valgrind failed ({run.returncode}):\n{out[-2000:]}")
    match = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", default=[], help="a src/ tree to measure (default: installed)")
    parser.add_argument(
        "--product",
        action="store_true",
        help="the product's configuration: API-built snapshot, access log, WafRecorder (edge_inprocess.py)",
    )
    parser.add_argument("--waf25", action="store_true", help="with --product: the zone with 25 custom rules")
    parser.add_argument(
        "--ratelimit", action="store_true", help="with --product: the pooled zone with one rate-limiting rule"
    )
    parser.add_argument("--iterations", type=int, default=5000, help="requests in the longer run, minus 1000")
    args = parser.parse_args()
    if args.waf25 and not args.product:
        parser.error("--waf25 needs --product")
    if args.ratelimit and (args.waf25 or not args.product):
        parser.error("--ratelimit needs --product and not --waf25")
    for tree in args.src or [""]:
        short, long = 1000, 1000 + args.iterations
        # measure() runs a tenth of the iterations as warm-up first: 1.1 requests per iteration.
        counts = [instructions(tree, n, args.product, args.waf25, args.ratelimit) for n in (long, short)]
        per_request = (counts[0] - counts[1]) / (1.1 * (long - short))
        print(f"{tree or 'installed'}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    main()
