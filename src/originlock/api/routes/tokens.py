"""/user/tokens and /accounts/{account_id}/tokens: Cloudflare's token API over the one token model.

Bodies take Cloudflare's ``policies`` (effect, permission groups by id, resources) or our flat form
(``permissions``, ``zones``: one allow policy), plus ``not_before``, ``expires_on`` and
``condition.request_ip``. Both paths manage the same tokens (a deployment has one set; see docs/api.md).

Who may manage which token is rule 3 of ``api/authz.py``: a token sees, creates, edits, rolls and deletes
only tokens whose grant is within its own; any other answers 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from originlock.api.authz import manages, require_grant_within, require_some
from originlock.api.deps import Caller, StoreDep, ZonesPage
from originlock.api.envelope import ok, result_info
from originlock.store import schema, tokens
from originlock.store.db import to_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.token_policies import (
    GROUPS,
    Policy,
    PolicyError,
    flat_policy,
    parse_policies,
    policies_to_cloudflare,
)

router = APIRouter()

#: Cloudflare's limit on IP ranges per token condition list; more would only slow every request down.
MAX_IP_RANGES = 100
VERIFIED = [{"code": 10000, "message": "This API Token is valid and active", "type": None}]


class IpLists(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_: list[str] = Field(default_factory=list, alias="in", max_length=MAX_IP_RANGES)
    not_in: list[str] = Field(default_factory=list, max_length=MAX_IP_RANGES)


class Condition(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request_ip: IpLists | None = None


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=120)
    policies: list[Any] | None = Field(default=None, max_length=100)
    permissions: list[str] | None = Field(default=None, max_length=64)
    zones: list[str] | None = Field(default=None, max_length=1000)
    not_before: AwareDatetime | None = None
    expires_on: AwareDatetime | None = None
    condition: Condition | None = None
    status: Literal["active", "disabled", "expired"] | None = None


def restrictions_of(body: TokenBody) -> tokens.Restrictions:
    ips = body.condition.request_ip if body.condition is not None else None
    limits = tokens.Restrictions(
        not_before=body.not_before.astimezone(UTC) if body.not_before else None,
        expires_on=body.expires_on.astimezone(UTC) if body.expires_on else None,
        ip_in=tokens.parse_networks(ips.in_, "condition.request_ip.in") if ips else (),
        ip_not_in=tokens.parse_networks(ips.not_in, "condition.request_ip.not_in") if ips else (),
    )
    if limits.not_before and limits.expires_on and limits.expires_on <= limits.not_before:
        raise Invalid("expires_on must be later than not_before", 1004)
    return limits


def policies_of(conn: Connection, body: TokenBody) -> tuple[Policy, ...]:
    if body.policies is None:
        if not body.permissions:
            raise Invalid("policies (Cloudflare's form) or permissions (originlock's flat form) is required", 1004)
        return (flat_policy(body.permissions, body.zones),)
    accounts = {r.id for r in conn.execute(select(schema.accounts.c.id))}
    try:
        return parse_policies(body.policies, accounts)
    except PolicyError as exc:
        raise Invalid(str(exc), 1004) from None


def _iso(moment: datetime | None) -> str | None:
    return to_iso(moment).replace(".000000Z", "Z") if moment is not None else None


def _account_id(conn: Connection) -> str:
    return str(conn.execute(select(schema.accounts.c.id).order_by(schema.accounts.c.created_on)).scalars().first())


def token_json(token: tokens.Token, account_id: str) -> dict[str, Any]:
    limits = token.restrictions
    condition: dict[str, Any] = {}
    if limits.ip_in or limits.ip_not_in:
        condition["request_ip"] = {"in": [str(n) for n in limits.ip_in], "not_in": [str(n) for n in limits.ip_not_in]}
    zones = token.zone_ids
    return {
        "id": token.id,
        "name": token.name,
        "status": token.status,
        "issued_on": token.issued_on,
        "modified_on": token.modified_on,
        "last_used_on": None,
        "not_before": _iso(limits.not_before),
        "expires_on": _iso(limits.expires_on),
        "policies": policies_to_cloudflare(token.policies, account_id),
        "condition": condition,
        # originlock's flat summary of the policies (what `originlock tokens list` shows).
        "permissions": sorted(token.permissions),
        "zones": sorted(zones) if zones is not None else None,
    }


def _managed(conn: Connection, caller: tokens.Token, token_id: str) -> tokens.Token:
    target = tokens.get_token(conn, token_id)
    if not manages(caller, target):
        raise NotFound(f"token {token_id} not found", 1001)
    return target


def _check_account(conn: Connection, account_id: str | None) -> None:
    if (
        account_id is not None
        and conn.execute(select(schema.accounts.c.id).where(schema.accounts.c.id == account_id)).first() is None
    ):
        raise NotFound(f"account {account_id} not found", 1001)


# --- the operations, shared by both paths -----------------------------------------------------------


def verify(token: tokens.Token) -> JSONResponse:
    """Any token may verify itself (the gate already refused it if expired or used from elsewhere)."""
    limits = token.restrictions
    result = {"id": token.id, "status": token.status, "not_before": _iso(limits.not_before)}
    return ok({**result, "expires_on": _iso(limits.expires_on)}, messages=VERIFIED)


def permission_groups(name: str | None, scope: str | None) -> JSONResponse:
    groups = [g for g in GROUPS if (name is None or g.name == name) and (scope is None or g.scope == scope)]
    return ok(
        [
            {"id": g.id, "name": g.name, "description": g.description, "scopes": [g.scope], "is_selectable": True}
            for g in groups
        ]
    )


def create(caller: tokens.Token, store: Any, body: TokenBody, account: str | None) -> JSONResponse:
    require_some(caller, "tokens:edit")
    limits = restrictions_of(body)
    with store.write() as conn:
        _check_account(conn, account)
        policies = policies_of(conn, body)
        require_grant_within(caller, policies, limits)
        created, secret = tokens.create_token(conn, body.name, None, None, restrictions=limits, policies=policies)
        # The secret is in this one response and nowhere else: only its hash is stored.
        return ok({**token_json(created, _account_id(conn)), "value": secret})


def listing(caller: tokens.Token, store: Any, page: Any, account: str | None) -> JSONResponse:
    require_some(caller, "tokens:read")
    with store.read() as conn:
        _check_account(conn, account)
        account_id = _account_id(conn)
        items = [token_json(t, account_id) for t in tokens.list_tokens(conn) if manages(caller, t)]
    chunk = items[page.offset : page.offset + page.per_page]
    # Past the last page: an empty page, which is where the SDK's auto-pager stops.
    return ok(chunk, result_info(page.page, page.per_page, len(chunk), len(items)))


def get(caller: tokens.Token, store: Any, token_id: str, account: str | None) -> JSONResponse:
    require_some(caller, "tokens:read")
    with store.read() as conn:
        _check_account(conn, account)
        return ok(token_json(_managed(conn, caller, token_id), _account_id(conn)))


def update(caller: tokens.Token, store: Any, token_id: str, body: TokenBody, account: str | None) -> JSONResponse:
    require_some(caller, "tokens:edit")
    limits = restrictions_of(body)
    with store.write() as conn:
        _check_account(conn, account)
        current = _managed(conn, caller, token_id)
        policies = policies_of(conn, body)
        require_grant_within(caller, policies, limits)
        status = body.status or current.status
        updated = tokens.update_token(conn, token_id, body.name, policies, limits, status)
        return ok(token_json(updated, _account_id(conn)))


def roll(caller: tokens.Token, store: Any, token_id: str, account: str | None) -> JSONResponse:
    require_some(caller, "tokens:edit")
    with store.write() as conn:
        _check_account(conn, account)
        _managed(conn, caller, token_id)
        return ok(tokens.roll_token(conn, token_id))


def delete(caller: tokens.Token, store: Any, token_id: str, account: str | None) -> JSONResponse:
    require_some(caller, "tokens:edit")
    with store.write() as conn:
        _check_account(conn, account)
        _managed(conn, caller, token_id)
        tokens.delete_token(conn, token_id)
    return ok({"id": token_id, "status": "revoked"})


# --- /user/tokens ------------------------------------------------------------------------------------
# Fixed paths (verify, permission_groups) are declared before /{token_id}.

USER = "/user/tokens"


@router.get(USER + "/verify")
def user_verify(token: Caller) -> JSONResponse:
    return verify(token)


@router.get(USER + "/permission_groups")
def user_permission_groups(token: Caller, name: str | None = None, scope: str | None = None) -> JSONResponse:
    return permission_groups(name, scope)


@router.post(USER)
def user_create(body: TokenBody, token: Caller, store: StoreDep) -> JSONResponse:
    return create(token, store, body, None)


@router.get(USER)
def user_list(token: Caller, store: StoreDep, page: ZonesPage) -> JSONResponse:
    return listing(token, store, page, None)


@router.get(USER + "/{token_id}")
def user_get(token_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    return get(token, store, token_id, None)


@router.put(USER + "/{token_id}")
def user_update(token_id: str, body: TokenBody, token: Caller, store: StoreDep) -> JSONResponse:
    return update(token, store, token_id, body, None)


@router.put(USER + "/{token_id}/value")
def user_roll(token_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    return roll(token, store, token_id, None)


@router.delete(USER + "/{token_id}")
def user_delete(token_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    return delete(token, store, token_id, None)


# --- /accounts/{account_id}/tokens: the same tokens, under the account ----------------------------------

ACCOUNT = "/accounts/{account_id}/tokens"


@router.get(ACCOUNT + "/verify")
def account_verify(account_id: str, token: Caller) -> JSONResponse:
    return verify(token)


@router.get(ACCOUNT + "/permission_groups")
def account_permission_groups(
    account_id: str, token: Caller, name: str | None = None, scope: str | None = None
) -> JSONResponse:
    return permission_groups(name, scope)


@router.post(ACCOUNT)
def account_create(account_id: str, body: TokenBody, token: Caller, store: StoreDep) -> JSONResponse:
    return create(token, store, body, account_id)


@router.get(ACCOUNT)
def account_list(account_id: str, token: Caller, store: StoreDep, page: ZonesPage) -> JSONResponse:
    return listing(token, store, page, account_id)


@router.get(ACCOUNT + "/{token_id}")
def account_get(account_id: str, token_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    return get(token, store, token_id, account_id)


@router.put(ACCOUNT + "/{token_id}")
def account_update(account_id: str, token_id: str, body: TokenBody, token: Caller, store: StoreDep) -> JSONResponse:
    return update(token, store, token_id, body, account_id)


@router.put(ACCOUNT + "/{token_id}/value")
def account_roll(account_id: str, token_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    return roll(token, store, token_id, account_id)


@router.delete(ACCOUNT + "/{token_id}")
def account_delete(account_id: str, token_id: str, token: Caller, store: StoreDep) -> JSONResponse:
    return delete(token, store, token_id, account_id)
