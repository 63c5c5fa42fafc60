"""The summary of ``product_vs_nginx.py``'s runs: medians per shape and edge, the ratios to nginx (of the
medians, and run by run), the lines it prints, and what the edges' logs say after the runs. Measuring is that
script's; this only reads what it measured and what was written."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

KEYS = (
    "edge_us_per_req",
    "edge_user_us_per_req",
    "rps",
    "p50_ms",
    "p99_ms",
    "origin_us_per_req",
    "faults_per_req",
    "switches_per_req",
    "involuntary_per_req",
)
EDGES = ("originlock", "nginx", "nginx-tls12", "floor")


def summarize(results: list[dict[str, Any]], shapes: list[str]) -> dict[str, Any]:
    """Per shape: each edge's medians, and originlock's ratios to nginx (and to the floor relay and the TLS 1.2
    pull where those were measured)."""
    summary: dict[str, Any] = {}
    for shape in shapes:
        med: dict[str, Any] = {
            edge: {
                k: round(statistics.median(r[k] for r in results if r["shape"] == shape and r["edge"] == edge), 2)
                for k in KEYS
            }
            for edge in EDGES
            if any(r["shape"] == shape and r["edge"] == edge for r in results)
        }
        for edge in ("originlock", "floor"):
            counted = [
                r["edge_instructions_per_req"] for r in results if _is(r, shape, edge, "edge_instructions_per_req")
            ]
            if counted:
                med[edge]["instructions_per_req"] = round(statistics.median(counted))
        med["ratio"] = _ratios(med["originlock"], med["nginx"])
        med["ratio_per_run"] = paired_ratios(results, shape)
        if "floor" in med:
            med["ratio_floor"] = _ratios(med["originlock"], med["floor"])
            med["floor_vs_nginx"] = _ratios(med["floor"], med["nginx"])
        if "nginx-tls12" in med:
            med["ratio_tls12"] = _ratios(med["originlock"], med["nginx-tls12"])
        summary[shape] = med
    return summary


def _is(r: dict[str, Any], shape: str, edge: str, key: str) -> bool:
    return bool(r["shape"] == shape and r["edge"] == edge and key in r)


def _ratios(top: dict[str, float], bottom: dict[str, float]) -> dict[str, float | None]:
    return {k: round(top[k] / bottom[k], 2) if bottom[k] else None for k in KEYS}


def paired_ratios(results: list[dict[str, Any]], shape: str) -> list[float]:
    """originlock / nginx CPU per request within each run: the two were measured minutes apart at most, so a
    VM whose speed drifts between runs moves both; the spread of these says how far one figure can be trusted."""
    per_run: dict[int, dict[str, float]] = {}
    for r in results:
        if r["shape"] == shape and r["edge"] in ("originlock", "nginx"):
            per_run.setdefault(r["run"], {})[r["edge"]] = r["edge_us_per_req"]
    return [round(p["originlock"] / p["nginx"], 2) for p in per_run.values() if p.get("nginx")]


def print_summary(summary: dict[str, Any], runs: int, duration: int) -> None:
    print(f"\nmedians of {runs} runs, {duration} s each (CPU µs per request of the edge process)")
    print(f"{'shape':<18} {'originlock':>11} {'nginx':>8} {'ratio':>6}   p99 ol/nginx ms   req/s ol/nginx")
    for shape, med in summary.items():
        ol, ng = med["originlock"], med["nginx"]
        print(
            f"{shape:<18} {ol['edge_us_per_req']:>11.1f} {ng['edge_us_per_req']:>8.1f} "
            f"{med['ratio']['edge_us_per_req']:>6.2f}"
            f"   {ol['p99_ms']:>6.2f} / {ng['p99_ms']:<6.2f}   {ol['rps']:>8.0f} / {ng['rps']:<8.0f}"
        )
        per_run = med["ratio_per_run"]
        if per_run:
            print(
                f"{'  run by run':<18} {'':>11} {'':>8} {statistics.median(per_run):>6.2f}"
                f"   (median of each run's own ratio; {min(per_run):.2f} to {max(per_run):.2f})"
            )
        if "floor" in med:
            fl = med["floor"]
            print(
                f"{'  floor relay':<18} {fl['edge_us_per_req']:>11.1f} {'':>8} "
                f"{fl['edge_us_per_req'] / ng['edge_us_per_req']:>6.2f}   {fl['p99_ms']:>6.2f} / {'':<6}"
                f"   {fl['rps']:>8.0f}"
            )
            print(
                f"{'  originlock/floor':<18} {'':>11} {'':>8} "
                f"{ol['edge_us_per_req'] / fl['edge_us_per_req']:>6.2f}   (the product's own share above the floor)"
            )
        print(
            f"{'  per request':<18} "
            + "; ".join(
                f"{edge} {med[edge]['edge_user_us_per_req']:.1f} µs user, {med[edge]['faults_per_req']:.2f} faults, "
                f"{med[edge]['switches_per_req']:.2f} switches ({med[edge]['involuntary_per_req']:.2f} involuntary)"
                for edge in ("originlock", "floor", "nginx")
                if edge in med
            )
        )
        if "instructions_per_req" in ol:
            line = f"{'  instructions':<18} {ol['instructions_per_req']:>11,} per request (callgrind)"
            if "instructions_per_req" in med.get("floor", {}):
                floor_count = med["floor"]["instructions_per_req"]
                line += f", floor relay {floor_count:,}, above it {ol['instructions_per_req'] - floor_count:,}"
            print(line)
        if "nginx-tls12" in med:
            ng12 = med["nginx-tls12"]
            print(
                f"{'  vs TLS 1.2 pull':<18} {'':>11} {ng12['edge_us_per_req']:>8.1f} "
                f"{med['ratio_tls12']['edge_us_per_req']:>6.2f}   {'':>6} / {ng12['p99_ms']:<6.2f}"
                f"   {'':>8} / {ng12['rps']:<8.0f}"
            )


def print_idle(idle: dict[str, float], seconds: float, summary: dict[str, Any]) -> None:
    print(
        f"idle CPU, ms per second with no request ({seconds} s): originlock {idle['originlock']:.1f}, "
        f"nginx {idle['nginx']:.1f}; per request at the medians' req/s: "
        + ", ".join(
            f"{shape} {idle['originlock'] * 1000 / med['originlock']['rps']:.0f} µs"
            for shape, med in summary.items()
            if med["originlock"]["rps"]
        )
    )


def count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def origin_reuse(log: Path, ports: dict[str, int]) -> dict[str, str]:
    """Per origin kind: the share of requests that arrived on a resumed TLS session (``r``)."""
    by_port = {str(port): kind for kind, port in ports.items()}
    counts: dict[str, list[int]] = {}
    time.sleep(1.2)  # the origin's buffered log flushes once a second
    for line in log.read_text().splitlines() if log.exists() else []:
        port, reused, _ = [*line.split(), "", "", ""][:3]
        seen = counts.setdefault(by_port.get(port, port), [0, 0])
        seen[0] += reused == "r"
        seen[1] += 1
    return {kind: f"{r}/{n}" for kind, (r, n) in counts.items()}
