"""Skip a test when a tool is missing on a user's machine; fail under CI, where it must be installed."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["in_ci", "require_executable", "require_or_skip"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_or_skip(ok: bool, reason: str) -> None:
    """Skip with ``reason`` when not ``ok``; under ``CI=true`` fail instead, since CI installs everything."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def require_executable(name: str, *extra_dirs: str) -> str:
    """Path of executable ``name`` (also looked up in ``extra_dirs``, e.g. /usr/sbin), or skip/fail."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join([*extra_dirs, "/usr/sbin", "/sbin"]))
    require_or_skip(path is not None, f"{name} is not installed")
    assert path is not None
    return path
