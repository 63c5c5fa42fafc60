"""Dashboard sign-in: an API token exchanged for a session cookie.

The cookie carries a random session id, never the token. The session keeps the token's secret in this
process's memory and looks the token up in the store on every request (``store.tokens.find_token``, the
API's own authentication), so revoking the token ends its dashboard sessions at once. Permissions and zone
scope are the token's: pages ask :func:`permitted`, which is the API's ``allow``.

Sessions live in one process: behind a load balancer spreading a fleet's nodes, sign-in needs sticky
sessions (or sign in on each node).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from originlock.api.deps import allow
from originlock.store.db import Store
from originlock.store.errors import Forbidden
from originlock.store.tokens import Token, find_token

__all__ = ["COOKIE", "SESSION_SECONDS", "Sessions", "permitted"]

COOKIE = "originlock_dashboard"
#: A working day; sign in again after it. Idle sessions are not extended (no sliding expiry to reason about).
SESSION_SECONDS = 8 * 3600
#: Sessions kept at most; the oldest goes first. Bounds the memory an anonymous caller can make us use.
MAX_SESSIONS = 1000


@dataclass(frozen=True)
class _Session:
    secret: str
    expires: float


class Sessions:
    """Session id -> token secret, in memory, with expiry."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def __repr__(self) -> str:
        return f"Sessions(active={len(self._sessions)})"

    def _lookup(self, secret: str) -> Token | None:
        with self._store.read() as conn:
            token = find_token(conn, secret.strip())
        return token if token is not None and token.status == "active" else None

    def sign_in(self, secret: str) -> str | None:
        """A new session id for a valid token, or None (unknown, revoked or expired token)."""
        if not secret.strip() or self._lookup(secret) is None:
            return None
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._sessions = {k: v for k, v in self._sessions.items() if v.expires > now}
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session_id] = _Session(secret.strip(), now + SESSION_SECONDS)
        return session_id

    def token(self, session_id: str | None) -> Token | None:
        """The session's token as the store has it now; None when signed out, expired or revoked."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or session.expires <= self._clock():
            return None
        return self._lookup(session.secret)

    def sign_out(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)


def permitted(token: Token, permission: str, zone_id: str | None = None) -> bool:
    """Whether the API would let ``token`` do ``permission`` on ``zone_id`` (the API's own check)."""
    try:
        allow(token, permission, zone_id)
    except Forbidden:
        return False
    return True
