"""Load the OWASP CRS shipped in this package (``crs/``: rule files, data files, LICENSE) once.

The rule files are the CRS 4.28.0 release's ``REQUEST-*.conf`` and ``RESPONSE-95*.conf`` (Apache-2.0,
``crs/LICENSE``); ``RESPONSE-980-CORRELATION.conf`` (phase 5 reporting for ModSecurity's error log) is not
shipped: the access log records the scores (docs/waf.md).
``load_engine()`` compiles them on first use and returns the same :class:`Engine` afterwards: one
compiled ruleset per process, shared by every zone that deploys it.
"""

from __future__ import annotations

import functools
from pathlib import Path

from .compiler import CompiledRules, compile_rules
from .engine import Engine

__all__ = ["CRS_DIR", "CRS_VERSION", "load_engine", "load_rules"]

CRS_DIR = Path(__file__).with_name("crs")
CRS_VERSION = "4.28.0"


def load_rules(directory: Path = CRS_DIR) -> CompiledRules:
    # ModSecurity's include order: REQUEST-* before RESPONSE-* (they sort that way).
    files = sorted([*directory.glob("REQUEST-*.conf"), *directory.glob("RESPONSE-95*.conf")])
    return compile_rules(((path.name, path.read_text("utf-8")) for path in files), directory)


@functools.cache
def load_engine() -> Engine:
    """The compiled CRS (compiled on the first call, ~1 s; shared afterwards)."""
    return Engine(load_rules())
