"""/accounts/{account_id}/rulesets: Cloudflare's account-level Rulesets API (custom rulesets and entry points).

The 15 endpoints of the zone-level API, at account level. Authorization is the alerting routes' account check
(``firewall:read`` / ``firewall:edit``, and not for zone-scoped tokens: one account ruleset reaches every zone).
Route order matters: ``/rulesets/phases/...`` is declared before ``/rulesets/{ruleset_id}/...``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, Row

from originlock.api.deps import Caller, StoreDep
from originlock.api.envelope import ok, result_info
from originlock.api.routes.alerting import _account
from originlock.store import account_rulesets as rs
from originlock.store.db import Store
from originlock.store.rulesets import ruleset_json
from originlock.store.tokens import Token

router = APIRouter()
BASE = "/accounts/{account_id}/rulesets"
JsonBody = Annotated[dict[str, Any], Body()]


def _read(request: Request, store: Store, token: Token, account_id: str) -> None:
    _account(request, store, token, account_id, "firewall:read")


def _edit(request: Request, store: Store, token: Token, account_id: str) -> None:
    _account(request, store, token, account_id, "firewall:edit")


def _write(store: Store, change: Callable[[Connection], Row[Any]]) -> JSONResponse:
    with store.write() as conn:
        return ok(ruleset_json(change(conn)))


def _versions(conn: Connection, current: Row[Any]) -> JSONResponse:
    items = [ruleset_json(v, with_rules=False) for v in rs.list_versions(conn, current)]
    return ok(items, result_info(1, max(len(items), 1), len(items), len(items)))


@router.get(BASE + "/phases/{phase}/entrypoint")
def get_entrypoint(account_id: str, phase: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _read(request, store, token, account_id)
    with store.read() as conn:
        return ok(ruleset_json(rs.get_entrypoint(conn, account_id, phase)))


@router.put(BASE + "/phases/{phase}/entrypoint")
def put_entrypoint(
    account_id: str, phase: str, body: JsonBody, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _edit(request, store, token, account_id)
    return _write(store, lambda conn: rs.put_entrypoint(conn, account_id, phase, body))


@router.get(BASE + "/phases/{phase}/entrypoint/versions")
def list_entrypoint_versions(
    account_id: str, phase: str, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _read(request, store, token, account_id)
    with store.read() as conn:
        return _versions(conn, rs.get_entrypoint(conn, account_id, phase))


@router.get(BASE + "/phases/{phase}/entrypoint/versions/{version}")
def get_entrypoint_version(
    account_id: str, phase: str, version: str, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _read(request, store, token, account_id)
    with store.read() as conn:
        return ok(ruleset_json(rs.get_version(conn, rs.get_entrypoint(conn, account_id, phase), version)))


@router.get(BASE)
def list_rulesets(account_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _read(request, store, token, account_id)
    with store.read() as conn:
        items = [ruleset_json(r, with_rules=False) for r in rs.list_rulesets(conn, account_id)]
    # The SDK pages account rulesets by cursor; everything fits one page, so no cursor is returned.
    return ok(items, {"cursor": None, "per_page": max(len(items), 1)})


@router.post(BASE)
def create_ruleset(account_id: str, body: JsonBody, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _edit(request, store, token, account_id)
    return _write(store, lambda conn: rs.create_ruleset(conn, account_id, body))


@router.get(BASE + "/{ruleset_id}")
def get_ruleset(account_id: str, ruleset_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _read(request, store, token, account_id)
    with store.read() as conn:
        return ok(ruleset_json(rs.get_ruleset(conn, account_id, ruleset_id)))


@router.put(BASE + "/{ruleset_id}")
def update_ruleset(
    account_id: str, ruleset_id: str, body: JsonBody, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _edit(request, store, token, account_id)
    return _write(store, lambda conn: rs.update_ruleset(conn, account_id, ruleset_id, body))


@router.delete(BASE + "/{ruleset_id}")
def delete_ruleset(account_id: str, ruleset_id: str, request: Request, token: Caller, store: StoreDep) -> Response:
    _edit(request, store, token, account_id)
    with store.write() as conn:
        rs.delete_ruleset(conn, account_id, ruleset_id)
    return Response(status_code=204)


@router.get(BASE + "/{ruleset_id}/versions")
def list_versions(account_id: str, ruleset_id: str, request: Request, token: Caller, store: StoreDep) -> JSONResponse:
    _read(request, store, token, account_id)
    with store.read() as conn:
        return _versions(conn, rs.get_ruleset(conn, account_id, ruleset_id))


@router.get(BASE + "/{ruleset_id}/versions/{version}")
def get_version(
    account_id: str, ruleset_id: str, version: str, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _read(request, store, token, account_id)
    with store.read() as conn:
        return ok(ruleset_json(rs.get_version(conn, rs.get_ruleset(conn, account_id, ruleset_id), version)))


@router.delete(BASE + "/{ruleset_id}/versions/{version}")
def delete_version(
    account_id: str, ruleset_id: str, version: str, request: Request, token: Caller, store: StoreDep
) -> Response:
    _edit(request, store, token, account_id)
    with store.write() as conn:
        rs.delete_version(conn, rs.get_ruleset(conn, account_id, ruleset_id), version)
    return Response(status_code=204)


@router.post(BASE + "/{ruleset_id}/rules")
def add_rule(
    account_id: str, ruleset_id: str, body: JsonBody, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _edit(request, store, token, account_id)
    return _write(store, lambda conn: rs.add_rule(conn, account_id, ruleset_id, body))


@router.patch(BASE + "/{ruleset_id}/rules/{rule_id}")
def edit_rule(
    account_id: str, ruleset_id: str, rule_id: str, body: JsonBody, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _edit(request, store, token, account_id)
    return _write(store, lambda conn: rs.edit_rule(conn, account_id, ruleset_id, rule_id, body))


@router.delete(BASE + "/{ruleset_id}/rules/{rule_id}")
def delete_rule(
    account_id: str, ruleset_id: str, rule_id: str, request: Request, token: Caller, store: StoreDep
) -> JSONResponse:
    _edit(request, store, token, account_id)
    return _write(store, lambda conn: rs.delete_rule(conn, account_id, ruleset_id, rule_id))
