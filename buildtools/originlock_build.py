"""PEP 517 build backend: setuptools' own, except that a wheel compiles the edge's hot path.

``pip install .`` builds a wheel (compiled, see hotpath.py); ``pip install -e .`` builds an editable
install (interpreted, so that source edits apply). Everything else is setuptools unchanged.
"""

from __future__ import annotations

import os
from typing import Any

from hotpath import COMPILE_ENV
from setuptools import build_meta
from setuptools.build_meta import (  # noqa: F401  (the backend interface, re-exported unchanged)
    build_editable,
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)


def build_wheel(
    wheel_directory: str, config_settings: dict[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    os.environ[COMPILE_ENV] = "1"
    try:
        return str(build_meta.build_wheel(wheel_directory, config_settings, metadata_directory))
    finally:
        del os.environ[COMPILE_ENV]
