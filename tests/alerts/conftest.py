"""Fixtures for the alert tests (helpers live in alerthelpers.py so test modules can import them)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test modules import the helper beside this file by name; with --import-mode=importlib pytest does not put
# this directory on sys.path, so do it explicitly (as tests/server/conftest.py does).
sys.path.insert(0, str(Path(__file__).parent))

from alerthelpers import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
