"""What an idle node costs: CPU and event-loop wake-ups of ``originlock serve`` doing nothing (issue 15).

Starts one ``originlock serve`` on its default SQLite store (``--store URL`` for another), waits for it to
settle, then over ``--seconds`` reads the CPU of the node and of its ``--workers`` processes from
``/proc``, and in a second window of the same length counts the main process's ``epoll_wait`` calls
(``strace -f -c``): each one a wake-up of its event loop or of a thread waiting on one.

    python bench/fleet_idle.py --seconds 20 --workers 2
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, _SRC)
os.environ["PYTHONPATH"] = os.pathsep.join([_SRC, *filter(None, [os.environ.get("PYTHONPATH")])])

from originlock.testing.serve import start_serve  # noqa: E402


def _tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for child in children for p in _tree(int(child)))]


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="edge processes (serve --workers)")
    parser.add_argument("--store", help="a store URL (default: the node's SQLite file)")
    args = parser.parse_args()
    env = {"ORIGINLOCK_MASTER_KEY": secrets.token_hex(32), "ORIGINLOCK_ADMIN_TOKEN": secrets.token_urlsafe(24)}
    base = Path(tempfile.mkdtemp(prefix="fleet-idle-"))
    node = start_serve(base / "n0", args.store, env=env, extra_args=["--workers", str(args.workers)])
    try:
        time.sleep(5.0)  # past the first last-known-good save and the workers' start
        pids = _tree(node.proc.pid)
        cpu = _cpu_seconds(pids)
        time.sleep(args.seconds)
        cpu = _cpu_seconds(pids) - cpu
        fd, out = tempfile.mkstemp(prefix="strace-idle-")
        os.close(fd)
        tracer = subprocess.Popen(
            ["strace", "-f", "-c", "-e", "trace=epoll_wait,epoll_pwait", "-o", out, "-p", str(node.proc.pid)],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(args.seconds)
        tracer.send_signal(signal.SIGINT)
        tracer.wait()
        calls = sum(
            int(m.group(1))
            for line in Path(out).read_text().splitlines()
            if (m := re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?epoll_p?wait$", line))
        )
        os.unlink(out)
        print(
            f"idle serve, {len(pids)} processes: {cpu / args.seconds * 1000:.1f} CPU ms per second; "
            f"main process epoll_wait {calls / args.seconds:.1f} per second; "
            f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
