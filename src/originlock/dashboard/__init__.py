"""The web dashboard on the API's listener, under ``/dashboard``: which client certificate the edge presents to
each origin and why, whether each origin is locked, certificate expiry, live edge and WAF counters.

Modules: ``session`` (sign-in with an API token), ``overview`` (what a token may see, from the store),
``counters`` and ``waf_events`` (the edge's own counters), ``layout`` and ``pages`` (HTML), ``routes``.
"""

from __future__ import annotations

from originlock.dashboard.routes import attach_waf_recorder, router
from originlock.dashboard.waf_events import WafRecorder

__all__ = ["WafRecorder", "attach_waf_recorder", "router"]
