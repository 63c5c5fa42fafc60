"""The audit log: one row per successful API write, read back in Cloudflare's audit log shape."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, insert, or_, select

from originlock.store import schema
from originlock.store.db import now_iso

__all__ = ["JOB_METHOD", "AuditEvent", "AuditQuery", "entry_json", "list_events", "record"]

#: The ``method`` of entries written by the deployment's own jobs (automatic AOP rotation), not through the API.
JOB_METHOD = "JOB"


@dataclass(frozen=True)
class AuditEvent:
    account_id: str | None
    zone_id: str | None
    zone_name: str | None
    token_id: str | None
    actor_ip: str | None
    action: str
    method: str
    path: str
    resource_type: str
    resource_id: str | None
    old_value: Any
    new_value: Any


@dataclass(frozen=True)
class AuditQuery:
    account_id: str
    #: Also show user-level writes (no account: tokens); only for unrestricted tokens.
    include_user: bool
    since: str | None = None
    before: str | None = None
    action: str | None = None
    actor_ip: str | None = None
    zone_name: str | None = None
    id: str | None = None
    newest_first: bool = True


def record(conn: Connection, event: AuditEvent) -> str:
    event_id = str(uuid.uuid4())
    values = {**event.__dict__}
    for key in ("old_value", "new_value"):
        values[key] = None if values[key] is None else json.dumps(values[key], sort_keys=True)
    conn.execute(insert(schema.audit_events).values(id=event_id, at=now_iso(), **values))
    return event_id


def list_events(conn: Connection, query: AuditQuery, offset: int, limit: int) -> tuple[list[Row[Any]], int]:
    t = schema.audit_events
    owner = t.c.account_id == query.account_id
    stmt = select(t).where(or_(owner, t.c.account_id.is_(None)) if query.include_user else owner)
    filters = {
        "since": t.c.at >= query.since if query.since else None,
        "before": t.c.at < query.before if query.before else None,
        "action": t.c.action == query.action if query.action else None,
        "actor_ip": t.c.actor_ip == query.actor_ip if query.actor_ip else None,
        "zone_name": t.c.zone_name == query.zone_name.lower() if query.zone_name else None,
        "id": t.c.id == query.id if query.id else None,
    }
    for condition in filters.values():
        if condition is not None:
            stmt = stmt.where(condition)
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    order = (t.c.at.desc(), t.c.id) if query.newest_first else (t.c.at, t.c.id)
    return list(conn.execute(stmt.order_by(*order).offset(offset).limit(limit))), int(total)


def entry_json(row: Row[Any]) -> dict[str, Any]:
    """Cloudflare's v1 audit log entry: ``oldValue``/``newValue`` as JSON text, ``*Json`` as objects."""
    old = json.loads(row.old_value) if row.old_value is not None else None
    new = json.loads(row.new_value) if row.new_value is not None else None
    return {
        "id": row.id,
        "action": {"type": row.action, "result": True},
        # A job's change has no token: Cloudflare's "Cloudflare" actor type (an automated system) says so.
        "actor": {
            "id": row.token_id,
            "email": None,
            "ip": row.actor_ip,
            "type": "Cloudflare" if row.method == JOB_METHOD else "user",
        },
        "interface": "originlock" if row.method == JOB_METHOD else "API",
        "metadata": {
            "method": row.method,
            "path": row.path,
            "zone_id": row.zone_id,
            "zone_name": row.zone_name,
            "token_id": row.token_id,
        },
        "newValue": row.new_value,
        "newValueJson": new,
        "oldValue": row.old_value,
        "oldValueJson": old,
        "owner": {"id": row.account_id},
        "resource": {"id": row.resource_id, "type": row.resource_type},
        "when": row.at,
    }
