"""The API's request limits, apart from the gate that enforces them: the CLI's flags read them without
importing the web stack (an ``originlock edge`` node never runs the API)."""

from __future__ import annotations

__all__ = ["BODY_TOO_LARGE", "DEFAULT_MAX_BODY"]

#: 1 MiB. A certificate upload (leaf, chain and key) is under 20 KB and a ruleset of a thousand rules a few
#: hundred; nginx's client_max_body_size default is 1 MiB too. ``originlock serve --api-max-body`` changes it.
DEFAULT_MAX_BODY = 1024 * 1024
#: Error code of the 413 answer (the 10xxx family app.py uses for HTTP-level refusals, e.g. 10405).
BODY_TOO_LARGE = 10413
