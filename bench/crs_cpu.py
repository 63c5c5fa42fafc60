"""CPU per request of the managed rules (the CRS engine alone, no I/O), and the cost of deploying it.

    python bench/crs_cpu.py

Prints process CPU time per evaluation (best and median of 7 runs) at paranoia levels 1 and 2 for a
typical browser GET and a 10 KB urlencoded form POST; then compiles 1,000 zones' managed entry points
as the snapshot does and reports the time and the memory they add (the CRS itself is compiled once).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from originlock.store.ruleset_rules import compile_entrypoints
from originlock.waf.managed import HttpRequest, load_engine
from originlock.waf.managed.cloudflare import OWASP_RULESET_ID, engine_config

BROWSER = (
    (b"Host", b"shop.example.test"),
    (
        b"User-Agent",
        b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    ),
    (b"Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    (b"Accept-Language", b"en-GB,en;q=0.9"),
    (b"Accept-Encoding", b"gzip, deflate, br"),
    (b"Cookie", b"_ga=GA1.1.123456789.1700000000; session=eyJ1c2VyIjoxMn0.Zk3x9Q; consent=yes"),
    (b"Referer", b"https://shop.example.test/catalog?page=2"),
)
GET = HttpRequest(b"GET", b"/products/blue-shirt?color=blue&size=M", b"HTTP/1.1", BROWSER, "198.51.100.7")
FORM_BODY = b"&".join(b"field%d=Some+ordinary+text+%d%%2C+nothing+to+see" % (i, i) for i in range(220))[:10240]
FORM = HttpRequest(
    b"POST",
    b"/contact",
    b"HTTP/1.1",
    (*BROWSER, (b"Content-Type", b"application/x-www-form-urlencoded"), (b"Content-Length", b"%d" % len(FORM_BODY))),
    "198.51.100.7",
    FORM_BODY,
)


def per_request(request: HttpRequest, paranoia: int, n: int = 200) -> tuple[float, float]:
    engine = load_engine()
    params = {
        "id": OWASP_RULESET_ID,
        "overrides": {
            "categories": [{"category": f"paranoia-level-{level}", "enabled": level <= paranoia} for level in (2, 3, 4)]
        },
    }
    config = engine_config(params)
    assert config.paranoia_level == paranoia
    engine.evaluate(request, config)
    runs = []
    for _ in range(7):
        start = time.process_time()
        for _ in range(n):
            engine.evaluate(request, config)
        runs.append((time.process_time() - start) / n * 1e6)
    return min(runs), statistics.median(runs)


def main() -> None:
    start = time.process_time()
    load_engine()
    print(f"CRS compiled in {time.process_time() - start:.2f} s CPU (once per process)")
    for paranoia in (1, 2):
        for name, request in (("browser GET", GET), ("10 KB form POST", FORM)):
            best, median = per_request(request, paranoia)
            print(f"PL{paranoia} {name:16s} best {best:7.0f} us  median {median:7.0f} us CPU per request")
    rules = json.dumps(
        [
            {
                "id": "e" * 32,
                "action": "execute",
                "expression": "true",
                "enabled": True,
                "action_parameters": {"id": OWASP_RULESET_ID},
            }
        ]
    )
    rows = [
        SimpleNamespace(zone_id=f"{i:032x}", id=f"{i:031x}m", phase="http_request_firewall_managed", rules=rules)
        for i in range(1000)
    ]
    tracemalloc.start()
    start = time.process_time()
    compiled = compile_entrypoints(rows)
    elapsed = time.process_time() - start
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(compiled) == 1000
    print(
        f"1,000 zones' managed entry points compiled in {elapsed:.2f} s CPU, {current / 1e6:.1f} MB "
        f"({current / 1000 / 1024:.1f} KB per zone); the CRS engine is shared by all of them"
    )


if __name__ == "__main__":
    main()
