"""/zones/{zone_id}/rulesets: Cloudflare's Rulesets API for custom rules, rate limiting, Origin Rules and
the managed phase.

The managed "Cloudflare OWASP Core Ruleset" (``waf/managed``) is listed with the zone's rulesets (first
page) and readable by its id; it cannot be changed, only deployed by an ``execute`` rule in the zone's
``http_request_firewall_managed`` entry point; executed in the ``http_response_firewall_managed`` entry
point it runs its response rules (data leakage, docs/waf.md).

Writes compile the new rules with the WAF engine first (``store/ruleset_rules.py``); an invalid rule is
a 400 whose error carries ``source.pointer`` (``/rules/0/expression``), and nothing is stored.
``?dry_run=true`` runs the same write and rolls it back: 200 answers carry ``result: null``, 204 stays 204.

Route order matters: ``/rulesets/phases/...`` is declared before ``/rulesets/{ruleset_id}/...``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, Row

from originlock.api.deps import FirewallEdit, FirewallRead, StoreDep
from originlock.api.envelope import ok
from originlock.store import rulesets
from originlock.store.db import Store
from originlock.store.errors import Invalid
from originlock.store.zones import get_zone
from originlock.waf.managed.cloudflare import OWASP_RULESET_ID, ruleset_summary

router = APIRouter()
BASE = "/zones/{zone_id}/rulesets"
JsonBody = Annotated[dict[str, Any], Body()]
DryRun = Annotated[str | None, Query()]

#: Cloudflare lists rulesets with cursor pagination; 50 per page unless asked otherwise.
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1000


class _RolledBack(Exception):
    """Raised inside a write transaction to undo a dry run."""


def _dry_run(value: str | None) -> bool:
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise Invalid("dry_run must be true or false", 1004)


def _write(store: Store, dry_run: str | None, change: Callable[[Connection], Row[Any]]) -> JSONResponse:
    """Run ``change`` in one transaction and answer with the whole ruleset (or null for a dry run)."""
    dry = _dry_run(dry_run)
    try:
        with store.write() as conn:
            result = rulesets.ruleset_json(change(conn))
            if dry:
                raise _RolledBack
    except _RolledBack:
        return ok(None)
    return ok(result)


def _delete(store: Store, dry_run: str | None, change: Callable[[Connection], None]) -> Response:
    """Run ``change`` in one transaction (rolled back for a dry run); 204 either way."""
    dry = _dry_run(dry_run)
    try:
        with store.write() as conn:
            change(conn)
            if dry:
                raise _RolledBack
    except _RolledBack:
        pass
    return Response(status_code=204)


def _versions(conn: Connection, current: Row[Any]) -> JSONResponse:
    """Cloudflare's version list: each version as a ruleset object without rules, newest first, one page."""
    return ok([rulesets.ruleset_json(row, with_rules=False) for row in rulesets.list_versions(conn, current)])


# --- phase entry points ---------------------------------------------------------------------------


@router.get(BASE + "/phases/{phase}/entrypoint")
def get_entrypoint(phase: str, store: StoreDep, access: FirewallRead) -> JSONResponse:
    with store.read() as conn:
        return ok(rulesets.ruleset_json(rulesets.get_entrypoint(conn, access.zone_id, phase)))


@router.put(BASE + "/phases/{phase}/entrypoint")
def put_entrypoint(
    phase: str, body: JsonBody, store: StoreDep, access: FirewallEdit, dry_run: DryRun = None
) -> JSONResponse:
    return _write(store, dry_run, lambda conn: rulesets.put_entrypoint(conn, access.zone_id, phase, body))


@router.get(BASE + "/phases/{phase}/entrypoint/versions")
def list_entrypoint_versions(phase: str, store: StoreDep, access: FirewallRead) -> JSONResponse:
    with store.read() as conn:
        return _versions(conn, rulesets.get_entrypoint(conn, access.zone_id, phase))


@router.get(BASE + "/phases/{phase}/entrypoint/versions/{version}")
def get_entrypoint_version(phase: str, version: str, store: StoreDep, access: FirewallRead) -> JSONResponse:
    with store.read() as conn:
        current = rulesets.get_entrypoint(conn, access.zone_id, phase)
        return ok(rulesets.ruleset_json(rulesets.get_version(conn, current, version)))


# --- rulesets -------------------------------------------------------------------------------------


@router.get(BASE)
def list_rulesets(
    store: StoreDep,
    access: FirewallRead,
    cursor: str | None = None,
    per_page: Annotated[int | None, Query(ge=1)] = None,
) -> JSONResponse:
    limit = min(per_page or DEFAULT_PER_PAGE, MAX_PER_PAGE)
    with store.read() as conn:
        rows, next_cursor = rulesets.list_rulesets(conn, access.zone_id, cursor=cursor, limit=limit)
    items = [rulesets.ruleset_json(r, with_rules=False) for r in rows]
    # The managed ruleset takes its place in the id order of the pages, as if it were a row.
    if (cursor is None or cursor < OWASP_RULESET_ID) and (next_cursor is None or next_cursor > OWASP_RULESET_ID):
        items.append(ruleset_summary(with_rules=False))
        items.sort(key=lambda item: str(item["id"]))
        if len(items) > limit:
            items = items[:limit]
            next_cursor = str(items[-1]["id"])
    info: dict[str, Any] = {"per_page": limit, "count": len(items)}
    if next_cursor is not None:
        info["cursor"] = next_cursor
    return ok(items, info)


@router.post(BASE)
def create_ruleset(body: JsonBody, store: StoreDep, access: FirewallEdit, dry_run: DryRun = None) -> JSONResponse:
    return _write(store, dry_run, lambda conn: rulesets.create_ruleset(conn, access.zone_id, body))


@router.get(BASE + "/{ruleset_id}")
def get_ruleset(ruleset_id: str, store: StoreDep, access: FirewallRead) -> JSONResponse:
    with store.read() as conn:
        if ruleset_id == OWASP_RULESET_ID:
            get_zone(conn, access.zone_id)
            return ok(ruleset_summary(with_rules=True))
        return ok(rulesets.ruleset_json(rulesets.get_ruleset(conn, access.zone_id, ruleset_id)))


@router.put(BASE + "/{ruleset_id}")
def update_ruleset(
    ruleset_id: str, body: JsonBody, store: StoreDep, access: FirewallEdit, dry_run: DryRun = None
) -> JSONResponse:
    return _write(store, dry_run, lambda conn: rulesets.update_ruleset(conn, access.zone_id, ruleset_id, body))


@router.delete(BASE + "/{ruleset_id}")
def delete_ruleset(ruleset_id: str, store: StoreDep, access: FirewallEdit, dry_run: DryRun = None) -> Response:
    return _delete(store, dry_run, lambda conn: rulesets.delete_ruleset(conn, access.zone_id, ruleset_id))


@router.get(BASE + "/{ruleset_id}/versions")
def list_versions(ruleset_id: str, store: StoreDep, access: FirewallRead) -> JSONResponse:
    with store.read() as conn:
        if ruleset_id == OWASP_RULESET_ID:
            get_zone(conn, access.zone_id)
            return ok([ruleset_summary(with_rules=False)])
        return _versions(conn, rulesets.get_ruleset(conn, access.zone_id, ruleset_id))


@router.get(BASE + "/{ruleset_id}/versions/{version}")
def get_version(ruleset_id: str, version: str, store: StoreDep, access: FirewallRead) -> JSONResponse:
    with store.read() as conn:
        if ruleset_id == OWASP_RULESET_ID and version == "1":
            get_zone(conn, access.zone_id)
            return ok(ruleset_summary(with_rules=True))
        current = rulesets.get_ruleset(conn, access.zone_id, ruleset_id)
        return ok(rulesets.ruleset_json(rulesets.get_version(conn, current, version)))


@router.delete(BASE + "/{ruleset_id}/versions/{version}")
def delete_version(
    ruleset_id: str, version: str, store: StoreDep, access: FirewallEdit, dry_run: DryRun = None
) -> Response:
    """Delete an old version (the current one is 400); the number is not reused."""

    def change(conn: Connection) -> None:
        rulesets.delete_version(conn, rulesets.get_ruleset(conn, access.zone_id, ruleset_id), version)

    return _delete(store, dry_run, change)


# --- rules ----------------------------------------------------------------------------------------


@router.post(BASE + "/{ruleset_id}/rules")
def add_rule(
    ruleset_id: str, body: JsonBody, store: StoreDep, access: FirewallEdit, dry_run: DryRun = None
) -> JSONResponse:
    return _write(store, dry_run, lambda conn: rulesets.add_rule(conn, access.zone_id, ruleset_id, body))


@router.patch(BASE + "/{ruleset_id}/rules/{rule_id}")
def edit_rule(
    ruleset_id: str, rule_id: str, body: JsonBody, store: StoreDep, access: FirewallEdit, dry_run: DryRun = None
) -> JSONResponse:
    return _write(store, dry_run, lambda conn: rulesets.edit_rule(conn, access.zone_id, ruleset_id, rule_id, body))


@router.delete(BASE + "/{ruleset_id}/rules/{rule_id}")
def delete_rule(
    ruleset_id: str, rule_id: str, store: StoreDep, access: FirewallEdit, dry_run: DryRun = None
) -> JSONResponse:
    return _write(store, dry_run, lambda conn: rulesets.delete_rule(conn, access.zone_id, ruleset_id, rule_id))
