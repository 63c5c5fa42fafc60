"""Fixtures for the exposure monitor tests (helpers live in monhelpers.py so test modules can import them)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test modules import the helper beside this file by name; with --import-mode=importlib pytest does not put
# this directory on sys.path, so do it explicitly (as tests/originkit/conftest.py does).
sys.path.insert(0, str(Path(__file__).parent))

from monhelpers import MonitorEnv, make_env

from originlock.testing.require import require_executable


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MonitorEnv]:
    nginx_bin = require_executable("nginx")
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    made = make_env(tmp_path, nginx_bin)
    yield made
    made.store.close()
