"""originlock: a self-hosted edge with Cloudflare-compatible Authenticated Origin Pulls, WAF and control plane.

Start with ``originlock serve`` (``originlock.cli``); the pieces are ``store`` (the source of truth),
``api`` (the v4 control plane), ``snapshot`` (what the edge serves from), ``edge`` / ``pipeline`` /
``origin`` / ``proto`` (the data plane), ``waf`` (the Rules language) and ``originkit`` (what origins run).
"""

from originlock._version import __version__

__all__ = ["__version__"]
