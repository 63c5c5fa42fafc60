"""What one API write costs its node, in counts a busy machine does not change (issue 15).

Starts one ``originlock serve`` node on a fresh PostgreSQL schema (or SQLite with ``--sqlite``), makes a
zone, then sends ``--patches`` ``PATCH``es of its ``always_use_https`` one after the other. Around the
measured ``PATCH``es, ``strace -f -c`` is attached to the node (every thread): ``sendto`` calls per
``PATCH`` are the statements and pings the node sends (its own snapshot refresh and NOTIFY listener
included), ``futex`` calls the thread handoffs. The node's CPU per ``PATCH`` comes from ``/proc`` in a
second pass without strace, with the request latency (p50 / p99, with the load average: those two
depend on the machine).

    python bench/fleet_api_round_trips.py --patches 100
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

_SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, _SRC)
# The node is a subprocess: it must run this checkout too, not an installed copy.
os.environ["PYTHONPATH"] = os.pathsep.join([_SRC, *filter(None, [os.environ.get("PYTHONPATH")])])

from originlock.testing.serve import start_serve  # noqa: E402

PG = os.environ.get("ORIGINLOCK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _patches(client: httpx.Client, zone: str, count: int, start: int) -> list[float]:
    took = []
    for n in range(start, start + count):
        began = time.perf_counter()
        r = client.patch(f"/zones/{zone}/settings/always_use_https", json={"value": "on" if n % 2 else "off"})
        took.append((time.perf_counter() - began) * 1000)
        assert r.status_code == 200, r.text
    return took


def _strace_counts(pid: int, run: Callable[[], object]) -> dict[str, int]:
    fd, out = tempfile.mkstemp(prefix="strace-", suffix=".txt")
    os.close(fd)
    tracer = subprocess.Popen(
        ["strace", "-f", "-c", "-e", "trace=sendto,recvfrom,futex", "-o", out, "-p", str(pid)],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached to every thread
    run()
    time.sleep(0.5)  # the audit entries written after the last answers
    tracer.send_signal(signal.SIGINT)
    tracer.wait()
    counts = {}
    for line in Path(out).read_text().splitlines():
        match = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if match:
            counts[match.group(2)] = int(match.group(1))
    os.unlink(out)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=100)
    parser.add_argument("--sqlite", action="store_true", help="the node's default SQLite store instead")
    args = parser.parse_args()

    schema = f"ol_rtbench_{secrets.token_hex(4)}"
    store = None if args.sqlite else f"{PG}?schema={schema}"
    env = {"ORIGINLOCK_MASTER_KEY": secrets.token_hex(32), "ORIGINLOCK_ADMIN_TOKEN": secrets.token_urlsafe(24)}
    base = Path(tempfile.mkdtemp(prefix="fleet-rt-"))
    node = start_serve(base / "n0", store, env=env)
    try:
        headers = {"Authorization": f"Bearer {env['ORIGINLOCK_ADMIN_TOKEN']}"}
        client = httpx.Client(base_url=node.api_url + "/client/v4", headers=headers)
        account = client.get("/accounts").json()["result"][0]["id"]
        zone = client.post("/zones", json={"name": "rt.test", "account": {"id": account}}).json()["result"]["id"]
        _patches(client, zone, 20, 0)  # warm: pools, imports, first snapshot refreshes
        counts = _strace_counts(node.proc.pid, lambda: _patches(client, zone, args.patches, 20))
        per = {name: round(n / args.patches, 1) for name, n in sorted(counts.items())}
        print(f"per PATCH under strace -f ({args.patches} PATCHes): {per}")
        time.sleep(1.0)
        cpu = _cpu_seconds(node.proc.pid)
        took = _patches(client, zone, args.patches, 0)
        time.sleep(0.5)
        cpu = _cpu_seconds(node.proc.pid) - cpu
        ordered = sorted(took)
        print(
            f"node CPU per PATCH {cpu / args.patches * 1000:.1f} ms; latency p50 {statistics.median(took):.1f}, "
            f"p99 {ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]:.1f} ms; "
            f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
    finally:
        node.stop()
        if store is not None:
            import psycopg

            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
