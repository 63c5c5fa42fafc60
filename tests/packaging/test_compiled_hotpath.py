"""The wheel's mypyc-compiled hot path (buildtools/hotpath.py) passes the edge's own tests.

``pip install .`` installs the compiled modules; the rest of the suite runs the interpreted source, so
this test builds the compiled tree the way the wheel does and runs the request path's tests against it
(unit tests of every compiled module, and the end-to-end tests through ``originlock serve``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from originlock.testing.require import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "buildtools"))
from hotpath import COMPILE_ENV, HOT_MODULES  # noqa: E402

#: Every module's own tests plus the end-to-end ones (real `originlock serve`, nginx origins).
SUITES = ("tests/proto", "tests/pipeline", "tests/origin", "tests/edge", "tests/snapshot", "tests/e2e")


@pytest.fixture(scope="module")
def compiled_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_or_skip(importlib.util.find_spec("mypyc") is not None, "mypyc (from mypy) is not installed")
    require_or_skip(shutil.which(os.environ.get("CC", "cc")) is not None, "no C compiler")
    tree = tmp_path_factory.mktemp("compiled")
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    shutil.copytree(ROOT / "buildtools", tree / "buildtools", ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    env = {**os.environ, COMPILE_ENV: "1"}
    env.pop("ORIGINLOCK_PURE", None)
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return tree / "src"


def test_every_hot_module_is_compiled(compiled_src: Path) -> None:
    suffix = ".cpython-" if sys.implementation.name == "cpython" else "."
    for module in HOT_MODULES:
        stem = compiled_src / module.removesuffix(".py")
        built = list(stem.parent.glob(f"{stem.name}{suffix}*.so"))
        assert built, f"{module} was not compiled"


def test_compiled_hot_path_passes_the_edge_tests(compiled_src: Path) -> None:
    env = {**os.environ, "ORIGINLOCK_EXPECT_COMPILED": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", f"pythonpath={compiled_src}", *SUITES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-6000:]
