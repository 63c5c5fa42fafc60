"""The wheel a user's ``pip install .`` builds, built once per session the way pip builds it for them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from originlock.testing.require import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "buildtools"))
from hotpath import PURE_ENV, c_compiler  # noqa: E402

#: Build artefacts a working tree may hold and a fresh clone does not.
ARTEFACTS = ("__pycache__", "*.so", "*.egg-info", "build", "dist", ".mypy_cache", ".ruff_cache", ".pytest_cache")


def clean_copy(dest: Path) -> Path:
    """The tracked files of the checkout, as a fresh clone has them (uncommitted edits included)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is still listed
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="session")
def user_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel .`` (isolated build, as ``pip install .`` does) from a clean copy, by a fresh venv
    without the test environment's packages: the build sees only what pyproject.toml asks for."""
    require_or_skip(c_compiler() is not None, "no C compiler: the wheel would rightly be interpreted")
    base = tmp_path_factory.mktemp("wheel")
    tree = clean_copy(base / "clone")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    env = {key: value for key, value in os.environ.items() if key not in (PURE_ENV, "PYTHONPATH")}
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(base / "dist"),
            str(tree),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-4000:]
    (wheel,) = (base / "dist").glob("originlock-*.whl")
    return wheel


@pytest.fixture(scope="session")
def wheel_tree(user_wheel: Path) -> Path:
    """The wheel unpacked: what site-packages holds after ``pip install .``."""
    tree = user_wheel.parent.parent / "installed"
    with zipfile.ZipFile(user_wheel) as archive:
        archive.extractall(tree)
    return tree
