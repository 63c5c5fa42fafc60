"""The CRS regression cases against the engine directly (no edge): a fast development loop.

    python bench/crs_offline.py [--pl 4] [--show 20] [RULE_PREFIX]

The suite's runner (tests/waf/managed/test_crs_regression.py) sends the same cases through the real
edge; this one parses each raw request with a minimal HTTP/1 reader, so its pass rate is only a guide.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from originlock.testing.crs_ftw import judge, load_cases
from originlock.waf.managed import EngineConfig, HttpRequest, load_engine
from originlock.waf.managed.config import REGRESSION_TX

DATA = Path("/work/shared/data/coreruleset-4.28.0/tests/regression/tests")


def parse(raw: bytes) -> HttpRequest:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    method, target, protocol = ([*parts, b"", b"", b""])[:3]
    if len(parts) > 3:
        target, protocol = b" ".join(parts[1:-1]), parts[-1]
    headers = tuple(tuple(line.split(b":", 1)) for line in lines[1:] if b":" in line)
    headers = tuple((n.strip(), v.strip()) for n, v in headers)
    length = next((v for n, v in headers if n.lower() == b"content-length"), None)
    if length is not None and length.isdigit():
        body = body[: int(length)]
    elif not any(n.lower() == b"transfer-encoding" for n, _ in headers):
        body = b""
    return HttpRequest(method, target, protocol, headers, "127.0.0.1", body or None)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pl", type=int, default=4)
    parser.add_argument("--show", type=int, default=30)
    parser.add_argument("prefix", nargs="?", default="")
    args = parser.parse_args()
    engine = load_engine()
    config = EngineConfig(paranoia_level=args.pl, threshold=5, actions=((949110, "log"),), tx=REGRESSION_TX)
    cases = [c for c in load_cases(DATA) if str(c.rule_id).startswith(args.prefix)]
    failures = []
    start = time.process_time()
    for case in cases:
        outcome = engine.evaluate(parse(case.raw), config)
        logged = {m.rule_id for m in outcome.matches}
        why = judge(case, logged, 200)
        if why:
            failures.append((case, why))
    elapsed = time.process_time() - start
    print(
        f"{len(cases) - len(failures)}/{len(cases)} passed ({100 * (1 - len(failures) / max(1, len(cases))):.2f} %),"
        f" {elapsed / max(1, len(cases)) * 1e3:.2f} ms CPU per case"
    )
    by_rule = collections.Counter(c.rule_id for c, _ in failures)
    print("failing rules:", by_rule.most_common(40))
    for case, why in failures[: args.show]:
        print(case.name, why, case.raw[:200])


if __name__ == "__main__":
    main()
