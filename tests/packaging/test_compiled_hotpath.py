"""The wheel's mypyc-compiled hot path (buildtools/hotpath.py) passes the edge's own tests.

``pip install .`` installs the compiled modules; the rest of the suite runs the interpreted source, so
this test runs the request path's tests (unit tests of every compiled module, and the end-to-end tests
through ``originlock serve``) against the wheel a user's ``pip install .`` builds (conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Every module's own tests plus the end-to-end ones (real `originlock serve`, nginx origins).
SUITES = ("tests/proto", "tests/pipeline", "tests/origin", "tests/edge", "tests/snapshot", "tests/e2e")


def test_compiled_hot_path_passes_the_edge_tests(wheel_tree: Path) -> None:
    env = {**os.environ, "ORIGINLOCK_EXPECT_COMPILED": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", f"pythonpath={wheel_tree}", *SUITES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-6000:]
