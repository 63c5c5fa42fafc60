"""Fixtures for origin-kit tests (helpers live in okhelpers.py so other modules can import them)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helper modules beside this file are imported by name; pytest 9 does not put this directory on
# sys.path for conftest files, so do it explicitly (no tests/__init__.py in this repository).
sys.path.insert(0, str(Path(__file__).parent))

from okhelpers import Pki, make_pki

from originlock.testing.require import require_executable


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def curl_bin() -> str:
    return require_executable("curl")
