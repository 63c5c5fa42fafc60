"""Managed rules: the OWASP Core Rule Set compiled into this engine (docs/waf.md, "Managed rules")."""

from .engine import Engine, EngineConfig, Match, Outcome
from .loader import CRS_VERSION, load_engine
from .transaction import HttpRequest

__all__ = ["CRS_VERSION", "Engine", "EngineConfig", "HttpRequest", "Match", "Outcome", "load_engine"]
