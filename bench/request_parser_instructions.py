#!/usr/bin/env python3
"""Instructions per request of ``RequestParser.feed`` alone, counted by valgrind, for wrk's request and a
browser's (15 fields): the parser's part of ``bench/edge_instructions.py``, where a browser's request is
not measured (that loop sends wrk's one-field request). Also ``ResponseParser`` (``start`` and ``feed``) on
nginx's response, the origin side of the same loop (``nginx``).

The parser is fed one request (or response) per read on one connection, as a keep-alive visitor (or a pooled
origin connection) sends them; two iteration counts, and the difference divided by the difference in
requests removes start-up.

    python bench/request_parser_instructions.py [--src DIR ...]   # DIR: a src/ tree (e.g. a compiled wheel's)

Needs valgrind (Debian: apt-get install valgrind). A few seconds per tree.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

WRK = b"GET / HTTP/1.1\r\nHost: a.bench.test\r\n\r\n"
#: What a desktop Chrome sends for a page over HTTP/1.1 (a cookie, no conditional fields).
BROWSER = (
    b"GET /articles/2026/12/edge.html?ref=home HTTP/1.1\r\nHost: a.bench.test\r\nConnection: keep-alive\r\n"
    b'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"\r\nsec-ch-ua-mobile: ?0\r\n'
    b'sec-ch-ua-platform: "Linux"\r\nUpgrade-Insecure-Requests: 1\r\n'
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    b"Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
    b"Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: document\r\n"
    b"Referer: https://a.bench.test/\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\nCookie: session=8f2a1c; theme=dark\r\n\r\n"
)
#: nginx's response to wrk's request (bench/edge_inprocess.py's RESPONSE).
NGINX = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 20\r\nConnection: keep-alive\r\n\r\nCN=zone-a,O=x,C=xxxx"
)
_CHILD = """
import sys
tree, iterations, which = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if tree:
    sys.path.insert(0, tree)
import originlock
if tree and not originlock.__file__.startswith(tree):
    raise SystemExit(f"{{tree}} is not what was imported ({{originlock.__file__}})")
from originlock.proto.http1 import RequestParser, ResponseParser
message = {messages}[which]
if which == "nginx":
    origin = ResponseParser()
    start, feed = origin.start, origin.feed
    for _ in range(iterations):
        start(b"GET")
        events = feed(message)
    assert len(events) == 3 and origin.done, events
else:
    feed = RequestParser().feed
    for _ in range(iterations):
        events = feed(message)
    assert len(events) == 2, events
"""


def instructions(tree: str, iterations: int, which: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        child = Path(tmp) / "child.py"
        child.write_text(_CHILD.format(messages=repr({"wrk": WRK, "browser": BROWSER, "nginx": NGINX})))
        run = subprocess.run(
            [
                *("valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={tmp}/out"),
                *(os.path.realpath(sys.executable), str(child), tree, str(iterations), which),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    if run.returncode != 0:
        raise SystemExit(f"the loop under valgrind failed ({run.returncode}):\n{run.stderr[-2000:]}")
    match = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", default=[], help="a src/ tree to measure (default: installed)")
    parser.add_argument("--iterations", type=int, default=20000, help="requests in the longer run, minus 2000")
    parser.add_argument("--messages", default="wrk,browser,nginx", help="which of wrk,browser,nginx to feed")
    args = parser.parse_args()
    for tree in args.src or [""]:
        for which in args.messages.split(","):
            short, long = 2000, 2000 + args.iterations
            counts = [instructions(tree, n, which) for n in (long, short)]
            per_request = (counts[0] - counts[1]) / (long - short)
            print(f"{tree or 'installed'} {which}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    main()
