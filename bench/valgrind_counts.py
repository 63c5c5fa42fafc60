"""What the instruction-counting profiling aids share (origin_dial_instructions.py,
visitor_conn_instructions.py): the measured interpreter, the valgrind and strace command lines and the
parsing of what they write, per-unit differences of two runs, and the nginx configuration blocks.

Every count is the difference between two runs of the same child with two sizes (dials, connections)
divided by the difference in size, which removes start-up. The child runs with ``PYTHONHASHSEED=0``: with
random string hashing, the dict look-ups of two runs' imports collide differently and the start-up cost
does not cancel out (±20k instructions per unit at 30 units, issue 11 visitor4).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "CHILD_ENV",
    "cachegrind_command",
    "cachegrind_events",
    "callgrind_by_object",
    "callgrind_command",
    "describe_syscalls",
    "free_port",
    "interpreter",
    "nginx_edge_block",
    "origin_block",
    "per_unit",
    "run_child",
    "start_ready",
    "strace_command",
    "strace_counts",
]

#: The measured child's environment: string hashing fixed, so that two runs' start-ups cost the same.
CHILD_ENV = {**os.environ, "PYTHONHASHSEED": "0"}


def interpreter(python: str | None = None) -> str:
    """The measured interpreter: ``python`` (``--python``, a venv's) if given, else this one, resolved
    where ``sys.executable`` is a launcher script (pyenv's shims are shell scripts); a venv's own path is
    kept, so that its site-packages are the ones imported."""
    if python:
        return python
    with open(sys.executable, "rb") as f:
        return os.path.realpath(sys.executable) if f.read(2) == b"#!" else sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cachegrind_command(out: Path, *, cache_sim: bool = False) -> list[str]:
    sim = "--cache-sim=yes" if cache_sim else "--cache-sim=no"
    return ["valgrind", "--tool=cachegrind", sim, f"--cachegrind-out-file={out}"]


def callgrind_command(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--compress-strings=no", "--compress-pos=no", f"--callgrind-out-file={out}"]


def strace_command(out: Path) -> list[str]:
    return ["strace", "-f", "-c", "-o", str(out)]


def run_child(argv: Sequence[str], what: str) -> str:
    """Run a child to its end (under a tool); its stderr. Exits with its stderr's end if it failed."""
    run = subprocess.run(argv, capture_output=True, text=True, check=False, env=CHILD_ENV)
    if run.returncode != 0:
        raise SystemExit(f"{what} failed:\n{run.stderr[-3000:]}")
    return run.stderr


def start_ready(argv: Sequence[str], what: str, *, stderr: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """Start a child server and wait for the ``ready`` line it prints; it stops when its stdin closes."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, env=CHILD_ENV
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        err = proc.communicate()[1] or ""
        raise SystemExit(f"{what} did not start:\n{err[-3000:]}")
    return proc


def cachegrind_events(out: Path) -> dict[str, int]:
    """The event totals of a cachegrind output file (``Ir``, and the cache events with --cache-sim)."""
    text = out.read_text()
    events = re.search(r"^events:\s+(.+)$", text, re.MULTILINE)
    summary = re.search(r"^summary:\s+(.+)$", text, re.MULTILINE)
    if events is None or summary is None:
        raise SystemExit(f"no summary in {out}")
    return dict(zip(events.group(1).split(), map(int, summary.group(1).split()), strict=True))


#: Shared-object name prefixes and their group in the per-object table.
_GROUPS = (
    ("libcrypto", "libcrypto"),
    ("libssl", "libssl"),
    ("libc.so", "libc"),
    ("libc-", "libc"),
    ("ld-linux", "ld.so"),
    ("python", "python"),
    ("libpython", "python"),
    ("_ssl.", "_ssl (CPython)"),
    ("loop.cpython", "uvloop (+libuv)"),
    ("vgpreload", "valgrind"),
    ("libffi", "ctypes/libffi"),
    ("_ctypes", "ctypes/libffi"),
)


def _object_group(path: str) -> str:
    name = Path(path).name
    for prefix, group in _GROUPS:
        if name.startswith(prefix):
            return group
    if "__mypyc" in name:
        return "originlock (mypyc)"
    if name.startswith(("_http", "parser.cpython", "url_parser")):
        return "httptools"
    return name


def callgrind_by_object(out: Path) -> dict[str, int]:
    """Self instructions by shared-object group, from an uncompressed callgrind output file."""
    totals: dict[str, int] = {}
    current = "?"
    skip = False
    with out.open() as f:
        for line in f:
            if line[0].isdigit() or line[0] in "+-*":
                if skip:  # the inclusive cost of the call just named: not this function's own
                    skip = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    totals[current] = totals.get(current, 0) + int(fields[1])
            elif line.startswith("ob="):
                current = _object_group(line[3:].strip())
            elif line.startswith("calls="):
                skip = True
    return totals


def strace_counts(out: Path, per: float = 1.0) -> dict[str, float]:
    """Calls by system call from a ``strace -c`` output file, divided by ``per``."""
    counts: dict[str, float] = {}
    for line in out.read_text().splitlines():
        fields = line.split()
        # "% time  seconds  usecs/call  calls  [errors]  syscall"
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3]) / per
    return counts


def per_unit(low: Mapping[str, float], high: Mapping[str, float], units: int) -> dict[str, float]:
    """``(high - low) / units`` for every key of either run."""
    return {k: (high.get(k, 0) - low.get(k, 0)) / units for k in set(low) | set(high)}


def describe_syscalls(counts: Mapping[str, float], at_least: float) -> str:
    """``"27.4 syscalls: read=6.0 ..."``: the total, then the calls of at least ``at_least``, most first."""
    shown = sorted(((v, k) for k, v in counts.items() if v >= at_least), reverse=True)
    return f"{sum(counts.values()):5.1f} syscalls: " + " ".join(f"{k}={v:.1f}" for v, k in shown)


def origin_block(port: int, certs: Path, pull_ca: Path, extra: str = "") -> str:
    """An nginx server block: the mTLS origin (``certs``/origin.pem, client certificates of ``pull_ca``
    required) answering ``ok``."""
    return (
        f"server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {certs}/origin.pem;\n"
        f"  ssl_certificate_key {certs}/origin.key; ssl_client_certificate {pull_ca};\n"
        f'  ssl_verify_client on; {extra}location / {{ return 200 "ok\\n"; }} }}\n'
    )


def nginx_edge_block(edge_port: int, origin_port: int, files: Path, *, keepalive: int, extra: str = "") -> str:
    """nginx as the edge, configured as the product is: a TLS listener for a.example.test with a session
    cache, ``proxy_pass`` over pooled mTLS connections (``files``/zone-a.pem) to the origin."""
    return (
        f"ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:EDGE:10m; {extra}\n"
        f"upstream o {{ server 127.0.0.1:{origin_port}; keepalive {keepalive}; }}\n"
        f"server {{ listen 127.0.0.1:{edge_port} ssl; server_name a.example.test;\n"
        f"  ssl_certificate {files}/edge.pem; ssl_certificate_key {files}/edge.key;\n"
        '  proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;\n'
        f"  proxy_ssl_certificate {files}/zone-a.pem; proxy_ssl_certificate_key {files}/zone-a.key;\n"
        "  proxy_ssl_session_reuse on; location / { proxy_pass https://o; } }\n"
    )
