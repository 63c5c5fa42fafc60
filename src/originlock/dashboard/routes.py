"""``/dashboard``: the routes. Sign-in with an API token, the overview page, and the live counters it polls.

Same listener as the API (``--api``), no second process. Pages are plain ``def`` handlers (FastAPI runs them
in its thread pool, as it does the API's store reads).
"""

from __future__ import annotations

import threading
import urllib.parse
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from originlock.api.deps import clock
from originlock.dashboard.counters import read_counters
from originlock.dashboard.edit import EDITABLE, EditRefused, apply_zone_settings
from originlock.dashboard.overview import build_overview, visible_zones
from originlock.dashboard.pages import login_page, overview_page
from originlock.dashboard.session import COOKIE, SESSION_SECONDS, Sessions
from originlock.dashboard.waf_events import EdgeWafActivity, WafCollector, WafRecorder
from originlock.edge.worker_stats import WorkerStatsBook
from originlock.store.db import Store
from originlock.store.tokens import Token

__all__ = ["attach_waf_recorder", "router"]

router = APIRouter(prefix="/dashboard", include_in_schema=False)

#: The sign-in form is one field; anything bigger is not a sign-in.
MAX_LOGIN_BODY = 4096
#: Pages are built here and load only our own script; inline styles are the page's one stylesheet.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on our own form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_sessions_lock = threading.Lock()


def attach_waf_recorder(app: FastAPI, recorder: WafRecorder, workers: WorkerStatsBook | None = None) -> None:
    """Let the dashboard and ``/metrics`` see the edge's WAF activity: ``recorder``'s, plus what the
    ``--workers`` processes report into ``workers`` (``serve`` calls this)."""
    activity = EdgeWafActivity(recorder.activity, workers)
    app.state.waf_activity = activity
    app.state.metrics.register(WafCollector(activity))


def _sessions(request: Request) -> Sessions:
    state = request.app.state
    with _sessions_lock:
        if getattr(state, "dashboard_sessions", None) is None:
            store: Store = state.store
            state.dashboard_sessions = Sessions(store)
    sessions: Sessions = state.dashboard_sessions
    return sessions


def _token(request: Request) -> Token | None:
    return _sessions(request).token(request.cookies.get(COOKIE))


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _overview(request: Request, token: Token, notice: str | None = None, status: int = 200) -> Response:
    now = clock(request)
    data = build_overview(request.app.state.store, token, now)
    activity = getattr(request.app.state, "waf_activity", None)
    counters = read_counters(request.app.state.metrics, activity, data.zone_names, data.waf_zone_names)
    return _html(overview_page(data, counters, token_name=token.name, now=now, notice=notice), status)


@router.get("")
def overview(request: Request) -> Response:
    token = _token(request)
    if token is None:
        return _html(login_page())
    return _overview(request, token)


def _same_origin(request: Request) -> bool:
    """A form post from our own page. The session cookie is SameSite=Strict already; this refuses the rest."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # older browsers and curl send none; the SameSite cookie still had to come along
    return urllib.parse.urlsplit(origin).netloc == request.headers.get("host")


@router.post("/zones/{zone_id}/settings")
async def edit_settings(zone_id: str, request: Request) -> Response:
    token = await run_in_threadpool(_token, request)
    if token is None:
        return _html(login_page("Sign in again: the session ended."), 401)
    if not _same_origin(request):
        return _html(login_page("That form did not come from this dashboard."), 403)
    body = await request.body()
    if len(body) > MAX_LOGIN_BODY:
        return await run_in_threadpool(_overview, request, token, "That is not a settings form.", 400)
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    form = {k: v[0] for k, v in fields.items() if k in EDITABLE}
    try:
        changed = await run_in_threadpool(apply_zone_settings, request.app.state.store, token, zone_id, form)
    except EditRefused as exc:
        return await run_in_threadpool(_overview, request, token, f"Not changed: {exc}", 403)
    notice = f"Saved: {'; '.join(changed)}. The edge uses it within a second." if changed else "Nothing changed."
    return await run_in_threadpool(_overview, request, token, notice)


@router.post("/login")
async def login(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_LOGIN_BODY:
        return _html(login_page("That is not an API token."), 400)
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    secret = (fields.get("token") or [""])[0]
    session_id = await run_in_threadpool(_sessions(request).sign_in, secret)
    if session_id is None:
        return _html(login_page("Unknown or revoked API token."), 401)
    response = RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=SESSION_SECONDS,
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    _sessions(request).sign_out(request.cookies.get(COOKIE))
    response = RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


@router.get("/live.json")
def live(request: Request) -> Response:
    token = _token(request)
    if token is None:
        return JSONResponse({"error": "sign in at /dashboard"}, status_code=401, headers=HEADERS)
    zones, waf_zones = visible_zones(request.app.state.store, token)
    counters = read_counters(
        request.app.state.metrics, getattr(request.app.state, "waf_activity", None), zones, waf_zones
    )
    statuses: dict[str, int] = {}
    for (_, status), count in counters.requests.items():
        statuses[str(status)] = statuses.get(str(status), 0) + count
    actions: dict[str, int] = {}
    for (_, action), count in counters.waf.items():
        actions[action] = actions.get(action, 0) + count
    events: list[dict[str, Any]] = [
        {
            "at": e.at,
            "zone": e.zone,
            "host": e.host,
            "method": e.method,
            "path": e.path,
            "action": e.action,
            "rule_id": e.rule_id,
            "phase": e.phase,
            "ray_id": e.ray_id,
        }
        for e in counters.events[:50]
    ]
    payload = {
        "at": clock(request).timestamp(),
        "statuses": statuses,
        "waf": actions,
        "events": events,
        # Per zone, for the totals tables.
        "requests": [{"zone": z, "status": st, "count": n} for (z, st), n in sorted(counters.requests.items())],
        "waf_by_zone": [{"zone": z, "action": a, "count": n} for (z, a), n in sorted(counters.waf.items())],
    }
    return JSONResponse(payload, headers=HEADERS)


@router.get("/static/live.js")
def live_js() -> Response:
    script = resources.files("originlock.dashboard").joinpath("live.js").read_text(encoding="utf-8")
    return Response(script, media_type="text/javascript", headers={**HEADERS, "Cache-Control": "max-age=300"})
