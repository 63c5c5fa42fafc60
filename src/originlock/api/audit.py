"""Audit every successful API write: who (token id), what (method, path, resource), when, before and after.

An ASGI middleware, so no route can forget it. Before a PUT, PATCH or DELETE it reads the resource through
the same app with the caller's own credentials (a GET on the same path; "before" is empty when there is no such
GET); after a 2xx answer it records the answer's ``result`` as "after". Both go through :func:`redact` first:
secrets (private keys, token values, webhook secrets) never reach the log, and the API never returns key
material in the first place. The entry is written after the answer, in its own transaction that leaves the
store's generation alone (no edge recompiles for it); a process killed in between loses that one entry.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool

from originlock.store import schema
from originlock.store.audit import AuditEvent, record
from originlock.store.db import Store
from originlock.store.tokens import Token, find_token

__all__ = ["AuditLog", "redact"]

log = logging.getLogger("originlock.api.audit")

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ACTIONS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
#: Keys whose values are secrets wherever they appear.
SECRET_KEYS = frozenset({"private_key", "key", "key_pem", "secret", "client_secret", "token"})
REDACTED = "[redacted]"
#: Larger values are summarised: an audit row is not a backup of a 4 MiB zone file.
VALUE_MAX = 64 * 1024
_ZONE = re.compile(r"/zones/([0-9a-f]{32})(?:/|$)")
_ACCOUNT = re.compile(r"/accounts/([^/]+)")
_ID_LIKE = re.compile(r"^([0-9a-f]{32}|[0-9a-f-]{36}|\d+)$")


def redact(value: Any, *, token_path: bool) -> Any:
    """``value`` with every secret replaced; under ``/tokens`` the ``value`` field is the token's secret."""
    if isinstance(value, dict):
        return {
            k: REDACTED if k in SECRET_KEYS or (token_path and k == "value") else redact(v, token_path=token_path)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, token_path=token_path) for v in value]
    if token_path and isinstance(value, str):
        return REDACTED  # PUT .../tokens/{id}/value answers the new secret as a bare string
    return value


def _bounded(value: Any) -> Any:
    text = json.dumps(value)
    return value if len(text) <= VALUE_MAX else {"truncated": True, "size": len(text)}


def _result(body: bytes) -> Any:
    try:
        return json.loads(body).get("result")
    except (ValueError, AttributeError):
        return None


def _resource(path: str, after: Any) -> tuple[str, str | None]:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[-2] == "settings":
        return "settings", parts[-1]
    if isinstance(after, dict) and isinstance(after.get("id"), str) and parts and not _ID_LIKE.match(parts[-1]):
        # POST to a collection (or a setting whose id is its name): the collection is the type.
        return parts[-1], after["id"]
    if len(parts) >= 2 and _ID_LIKE.match(parts[-1]):
        return parts[-2], parts[-1]
    return (parts[-1] if parts else "api"), None


async def _empty() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


#: Where a route leaves what it changed as it was before (``request.state``), read in its own write
#: transaction: for these writes the audit log does not read "before" through the app first.
BEFORE_STATE = "audit_before"


class AuditLog:
    def __init__(self, app: Any, prefix: str, store: Store) -> None:
        self.app = app
        self.prefix = prefix
        self.store = store
        # A setting's PATCH: reading "before" was a whole second request through the app (its dependencies,
        # a thread hop, a store checkout) on the way of every setting change to the edges.
        self._route_reads_before = re.compile(re.escape(prefix) + r"/zones/[^/]+/settings/[^/]+")

    async def _read(self, scope: Any) -> Any:
        """The resource as the caller could read it now (None when there is no GET for this path)."""
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"content-type")]
        sub = {**scope, "method": "GET", "query_string": b"", "headers": headers}
        status = 0
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(sub, _empty, capture)
        return _result(b"".join(chunks)) if status == 200 else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        store = self.store
        route_reads = scope["method"] == "PATCH" and self._route_reads_before.fullmatch(scope["path"]) is not None
        before = await self._read(scope) if scope["method"] != "POST" and not route_reads else None
        # Who and which zone: read before a DELETE (it may remove the zone), after the answer otherwise, so
        # that a write's critical path (and a change's way to every edge) carries one read transaction less.
        who = await run_in_threadpool(_who_now, store, scope) if scope["method"] == "DELETE" else None
        status = 0
        chunks: list[bytes] = []

        async def forward(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, forward)
        if route_reads:
            before = scope.get("state", {}).get(BEFORE_STATE)
        if 200 <= status < 300:
            try:
                await run_in_threadpool(_write, store, scope, who, before, _result(b"".join(chunks)))
            except Exception as exc:  # the write itself succeeded and was answered; say loudly what was lost
                log.error("audit entry for %s %s not recorded: %s", scope["method"], scope["path"], type(exc).__name__)


def _who_now(store: Store, scope: Any) -> tuple[str | None, str | None, str | None, str | None]:
    with store.read() as conn:
        return _who(conn, scope)


def _who(conn: Connection, scope: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(token id, account id, zone id, zone name)."""
    path = scope["path"]
    zone = _ZONE.search(path)
    account = _ACCOUNT.search(path)
    token = scope.get("state", {}).get("token")  # ApiGate's (every request reaching this middleware has one)
    if not isinstance(token, Token):
        headers = dict(scope["headers"])
        scheme, _, secret = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        token = find_token(conn, secret.strip()) if scheme.lower() == "bearer" and secret.strip() else None
    zone_row = None
    if zone is not None:
        z = schema.zones
        zone_row = conn.execute(select(z.c.id, z.c.name, z.c.account_id).where(z.c.id == zone.group(1))).first()
    account_id = zone_row.account_id if zone_row is not None else (account.group(1) if account else None)
    return (
        token.id if token is not None else None,
        account_id,
        zone_row.id if zone_row is not None else None,
        zone_row.name if zone_row is not None else None,
    )


def _write(store: Store, scope: Any, who: tuple[str | None, ...] | None, before: Any, after: Any) -> None:
    # Who and which zone are read in the entry's own transaction: one transaction after the answer, not two.
    with store.status_write() as conn:
        record(conn, _event(scope, who if who is not None else _who(conn, scope), before, after))


def _event(scope: Any, who: tuple[str | None, ...], before: Any, after: Any) -> AuditEvent:
    token_id, account_id, zone_id, zone_name = who
    path = scope["path"]
    token_path = "/tokens" in path
    if account_id is None and isinstance(after, dict) and isinstance(after.get("account"), dict):
        account_id = after["account"].get("id")  # POST /zones names its account in the answer
        zone_id, zone_name = after.get("id"), after.get("name")
    method = scope["method"]
    resource_type, resource_id = _resource(path, after)
    client = scope.get("client")
    return AuditEvent(
        account_id=account_id,
        zone_id=zone_id,
        zone_name=zone_name,
        token_id=token_id,
        actor_ip=client[0] if client else None,
        action=ACTIONS[method],
        method=method,
        path=path,
        resource_type=resource_type,
        resource_id=resource_id,
        old_value=_bounded(redact(before, token_path=token_path)) if before is not None else None,
        new_value=_bounded(redact(after, token_path=token_path)) if method != "DELETE" and after is not None else None,
    )
