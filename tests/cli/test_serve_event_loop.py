"""`originlock serve` runs every edge process on uvloop, and defaults to one edge process per core."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from originlock.edge.config import add_edge_arguments, auto_workers, edge_config_from_args
from originlock.testing.serve import start_serve

pytestmark = pytest.mark.slow


def _wait_for(output: Callable[[], str], pattern: str, count: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found: list[str] = re.findall(pattern, output())
        if len(found) >= count or time.monotonic() > deadline:
            return found


@pytest.mark.parametrize("workers", [1, 2])
def test_every_edge_process_runs_on_uvloop(tmp_path: Path, workers: int) -> None:
    proc = start_serve(tmp_path / "data", extra_args=["--workers", str(workers)])
    try:
        banner = _wait_for(proc.output, r"edge processes: .*; event loop: (\w+)", 1)
        assert banner == ["uvloop"], proc.output()
        spawned = _wait_for(proc.output, r"originlock-edge-\d+ \(pid \d+\): event loop (\w+)", workers - 1)
        assert spawned == ["uvloop"] * (workers - 1), proc.output()
    finally:
        assert proc.stop() == 0


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_edge_arguments(parser)
    return parser.parse_args(argv)


def test_workers_default_to_one_per_core() -> None:
    assert edge_config_from_args(_parse()).workers == auto_workers() >= 1
    assert edge_config_from_args(_parse("--workers", "auto")).workers == auto_workers()
    assert edge_config_from_args(_parse("--workers", "3")).workers == 3


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_workers_must_be_a_count_or_auto(value: str) -> None:
    with pytest.raises(SystemExit):
        _parse("--workers", value)
