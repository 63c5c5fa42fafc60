"""What an idle node costs, and how fast its edge processes see another process's commit (issue 15).

Starts one ``originlock serve`` on its default SQLite store (``--store URL`` for another) with ``--workers``
edge processes, waits for it to settle, then:

1. **CPU**, per process, over ``--seconds``: the kernel's run time of every thread
   (``/proc/PID/task/*/schedstat``, nanoseconds: ``/proc``'s utime/stime count 10-ms ticks, too coarse for
   an idle process), and the same from utime+stime for comparison with the earlier figures;
2. **wake-ups**, per process, in a second window of the same length (``strace -f -c`` attached to each
   process and its threads; the tracer's own cost stays out of the CPU window): the ``epoll_wait`` calls
   (each a return of an event loop from its wait) and every syscall, the top ones named;
3. with ``--changes N``, **propagation**: a zone with a proxied hostname is made through the API, and N
   flips of its ``always_use_https`` setting are written through the API (the serve process) while one
   kept-alive connection *per edge process* (SO_REUSEPORT picks the process; the bench finds which one
   serves each connection from ``/proc/net/tcp`` and the processes' descriptors) is polled every
   ``--poll-ms`` until it answers the new state (``301`` when on). Reported per process: from the API
   request's start to that process's edge serving the change, p50 / p99 / max.

``--src DIR`` runs the node from another checkout's ``src`` (a "before" tree), the bench itself from this one.

    python bench/fleet_idle.py --seconds 20 --workers 2 --changes 100
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

_HERE_SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, _HERE_SRC)

import httpx  # noqa: E402

from originlock.testing.serve import ServeProcess, start_serve  # noqa: E402

HOST = "app.idle.test"
_STRACE_LINE = re.compile(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$")


def _tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for child in children for p in _tree(int(child)))]


def _label(pid: int, main: int) -> str:
    if pid == main:
        return f"serve {pid}"
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    kind = "resource tracker" if "resource_tracker" in cmdline else "edge worker"
    return f"{kind} {pid}"


def _run_ns(pid: int) -> int:
    """Nanoseconds on a CPU of every live thread of ``pid`` (schedstat's first field)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):  # a thread that just exited
            total += int((task / "schedstat").read_text().split()[0])
    return total


def _threads_ns(pid: int) -> Counter[str]:
    """Nanoseconds on a CPU by thread name (``comm``: the event loop's thread has the process's name,
    ``asyncio_N`` the default executor's), for a breakdown of where an idle process's CPU goes."""
    by_name: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            name = (task / "comm").read_text().strip()
            by_name[re.sub(r"_\d+$", "_N", name)] += int((task / "schedstat").read_text().split()[0])
    return by_name


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measure_cpu(pids: list[int], seconds: float) -> dict[int, tuple[float, float]]:
    """Per process: (schedstat ms per second, utime+stime ms per second)."""
    ns = {p: _run_ns(p) for p in pids}
    ticks = {p: _ticks(p) for p in pids}
    threads = {p: _threads_ns(p) for p in pids}
    time.sleep(seconds)
    hz = os.sysconf("SC_CLK_TCK")
    for p in pids:
        after = _threads_ns(p)
        spent = {name: (after[name] - threads[p][name]) / 1e6 / seconds for name in after}
        busy = ", ".join(f"{name} {ms:.3f}" for name, ms in sorted(spent.items(), key=lambda kv: -kv[1]) if ms >= 0.001)
        print(f"    pid {p} CPU ms/s by thread: {busy or 'none'}")
    return {p: ((_run_ns(p) - ns[p]) / 1e6 / seconds, (_ticks(p) - ticks[p]) * 1000 / hz / seconds) for p in pids}


def measure_syscalls(pids: list[int], seconds: float) -> dict[int, Counter[str]]:
    """Per process (all its threads): syscall counts over ``seconds``, under strace."""
    tracers = []
    for pid in pids:
        fd, out = tempfile.mkstemp(prefix=f"strace-idle-{pid}-")
        os.close(fd)
        proc = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(pid)], stderr=subprocess.DEVNULL)
        tracers.append((pid, proc, out))
    time.sleep(seconds)
    counts: dict[int, Counter[str]] = {}
    for pid, proc, out in tracers:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        counts[pid] = Counter()
        for line in Path(out).read_text().splitlines():
            m = _STRACE_LINE.match(line)
            if m and m.group(2) != "total":
                counts[pid][m.group(2)] += int(m.group(1))
        os.unlink(out)
    return counts


def _server_pid(edge_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the accepted socket of the connection from ``client_port`` (IPv4 loopback)."""
    want_local, want_remote = f"0100007F:{edge_port:04X}", f"0100007F:{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want_local and fields[2] == want_remote:
            inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd) == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


def _one_connection_per_process(node: ServeProcess, pids: list[int]) -> dict[int, http.client.HTTPConnection]:
    """Kept-alive connections to the edge until every edge process serves one (SO_REUSEPORT spreads them)."""
    chosen: dict[int, http.client.HTTPConnection] = {}
    spare = []
    for _ in range(200):
        conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=5)
        conn.connect()
        assert conn.sock is not None
        _status(conn)  # the accept has happened once a response came
        owner = _server_pid(node.http_port, conn.sock.getsockname()[1], pids)
        if owner is not None and owner not in chosen:
            chosen[owner] = conn
        else:
            spare.append(conn)
        if len(chosen) == len(pids):
            break
    for conn in spare:
        conn.close()
    return chosen


def _status(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/", headers={"Host": HOST})
    response = conn.getresponse()
    response.read()
    return response.status


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def propagation(node: ServeProcess, token: str, edges: list[int], changes: int, poll: float, main: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    api = httpx.Client(base_url=node.api_url + "/client/v4", headers=headers, timeout=30)
    account = api.get("/accounts").json()["result"][0]["id"]
    zone = api.post("/zones", json={"name": "idle.test", "account": {"id": account}}).json()["result"]["id"]
    record = {"type": "A", "name": HOST, "content": "127.0.0.1", "proxied": True}
    assert api.post(f"/zones/{zone}/dns_records", json=record).status_code == 200
    time.sleep(2.0)  # every process has the hostname, and its first last-known-good save is done
    conns = _one_connection_per_process(node, edges)
    if len(conns) < len(edges):
        print(f"propagation: connections reached only {sorted(conns)} of the edge processes {edges}")
    seen: dict[int, list[float]] = {pid: [] for pid in conns}
    for n in range(changes):
        on = n % 2 == 0
        started = time.perf_counter()
        r = api.patch(f"/zones/{zone}/settings/always_use_https", json={"value": "on" if on else "off"})
        assert r.status_code == 200, r.text
        waiting = dict(conns)
        while waiting:
            for pid, conn in list(waiting.items()):
                if (_status(conn) == 301) == on:
                    seen[pid].append((time.perf_counter() - started) * 1000)
                    del waiting[pid]
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"change {n} not seen by {sorted(waiting)} within 30 s")
            time.sleep(poll)
        time.sleep(0.2)  # the processes idle between changes: what is measured is the wake-up
    for pid, values in sorted(seen.items()):
        print(
            f"  {_label(pid, main)}: {len(values)} changes through the API, from the request's start to this "
            f"edge serving it: p50 {statistics.median(values):.1f} ms, p99 {percentile(values, 0.99):.1f} ms, "
            f"max {max(values):.1f} ms"
        )
    for conn in conns.values():
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="edge processes (serve --workers)")
    parser.add_argument("--store", help="a store URL (default: the node's SQLite file)")
    parser.add_argument("--changes", type=int, default=0, help="API writes timed to every edge process")
    parser.add_argument("--poll-ms", type=float, default=1.0, help="pause between two polls of the edges")
    parser.add_argument("--src", default=_HERE_SRC, help="the checkout's src the node runs (default: this one)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after start before measuring")
    args = parser.parse_args()
    # The node is a subprocess: it runs --src, not an installed copy.
    os.environ["PYTHONPATH"] = os.pathsep.join([args.src, *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {"ORIGINLOCK_MASTER_KEY": secrets.token_hex(32), "ORIGINLOCK_ADMIN_TOKEN": secrets.token_urlsafe(24)}
    base = Path(tempfile.mkdtemp(prefix="fleet-idle-"))
    node = start_serve(base / "n0", args.store, env=env, extra_args=["--workers", str(args.workers)])
    try:
        time.sleep(args.settle)  # past the first last-known-good save and the workers' start
        main_pid = node.proc.pid
        pids = _tree(main_pid)
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        cpu = measure_cpu(pids, args.seconds)
        calls = measure_syscalls(pids, args.seconds)
        total_ns = sum(v[0] for v in cpu.values())
        total_ticks = sum(v[1] for v in cpu.values())
        print(
            f"idle serve from {args.src}, {len(pids)} processes, {args.seconds:g} s windows, load average before "
            f"{load}: {total_ns:.2f} CPU ms per second (schedstat; utime+stime {total_ticks:.1f})"
        )
        for pid in pids:
            ms, ticks = cpu[pid]
            counted = calls.get(pid, Counter())
            epoll = counted["epoll_wait"] + counted["epoll_pwait"]
            top = ", ".join(f"{name} {n / args.seconds:.1f}" for name, n in counted.most_common(6))
            print(
                f"  {_label(pid, main_pid)}: {ms:.3f} CPU ms/s (utime+stime {ticks:.1f}); "
                f"epoll_wait {epoll / args.seconds:.2f}/s; syscalls/s: {top or 'none'}"
            )
        if args.changes:
            edges = [p for p in pids if not _label(p, main_pid).startswith("resource tracker")]
            propagation(node, env["ORIGINLOCK_ADMIN_TOKEN"], edges, args.changes, args.poll_ms / 1000, main_pid)
        print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
