"""The control plane's web application: the v4 API and the dashboard on one listener.

The dashboard is a client of the API's layer (it signs in with API tokens and reads through the API's
dependencies), so it is joined to the API here, above both, rather than from inside ``api/``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from originlock import dashboard
from originlock.api.app import create_app
from originlock.api.gate import DEFAULT_MAX_BODY
from originlock.store.db import Store


def control_plane_app(
    store: Store, *, clock: Callable[[], datetime] | None = None, max_body: int = DEFAULT_MAX_BODY
) -> FastAPI:
    """What ``serve`` and ``originlock api`` listen with: the API, then the dashboard under ``/dashboard``."""
    app = create_app(store, clock=clock, max_body=max_body)
    app.include_router(dashboard.router)
    return app
