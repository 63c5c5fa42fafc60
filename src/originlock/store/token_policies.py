"""Token policies, Cloudflare's way: effect, permission groups (by Cloudflare's ids), resources.

A :class:`Policy` is what authorisation reads (``store/tokens.py``, ``api/authz.py``): which of our
permissions it allows or denies, on which zones (None: every zone and the account). The permission groups
are the Cloudflare groups for what originlock enforces, with Cloudflare's public ids, so a Terraform or SDK
body written for Cloudflare works here unchanged; a body in our flat form (``permissions``, ``zones``) is
one allow policy. Pure: no database, no clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "GROUPS",
    "PERMISSIONS",
    "PermissionGroup",
    "Policy",
    "PolicyError",
    "flat_policy",
    "parse_policies",
    "policies_from_json",
    "policies_to_cloudflare",
    "policies_to_json",
]

ZONE_SCOPE: Final = "com.cloudflare.api.account.zone"
ACCOUNT_SCOPE: Final = "com.cloudflare.api.account"
USER_SCOPE: Final = "com.cloudflare.api.user"


@dataclass(frozen=True)
class PermissionGroup:
    id: str
    name: str
    scope: str
    #: The originlock permission the group grants.
    permission: str
    description: str


#: Cloudflare's permission groups for what originlock enforces (ids as Cloudflare publishes them).
GROUPS: Final = (
    PermissionGroup("c8fed203ed3043cba015a93ad1616f1f", "Zone Read", ZONE_SCOPE, "zone:read", "Read zones"),
    PermissionGroup("e6d2666161e84845a636613608cee8d5", "Zone Write", ZONE_SCOPE, "zone:edit", "Edit zones"),
    PermissionGroup("82e64a83756745bbbb1c9c2701bf816b", "DNS Read", ZONE_SCOPE, "dns:read", "Read DNS records"),
    PermissionGroup("4755a26eedb94da69e1066d98aa820be", "DNS Write", ZONE_SCOPE, "dns:edit", "Edit DNS records"),
    PermissionGroup(
        "7b7216b327b04b8fbc8f524e1f9b7531",
        "SSL and Certificates Read",
        ZONE_SCOPE,
        "ssl:read",
        "Read SSL settings, AOP, custom and Origin CA certificates",
    ),
    PermissionGroup(
        "c03055bc037c4ea9afb9a9f104b7b721",
        "SSL and Certificates Write",
        ZONE_SCOPE,
        "ssl:edit",
        "Edit SSL settings, AOP, custom and Origin CA certificates",
    ),
    PermissionGroup(
        "4ec32dfcb35641c5bb32d5ef1ab963b4", "Firewall Services Read", ZONE_SCOPE, "firewall:read", "Read rulesets"
    ),
    PermissionGroup(
        "43137f8d07884d3198dc0ee77ca6e79b", "Firewall Services Write", ZONE_SCOPE, "firewall:edit", "Edit rulesets"
    ),
    PermissionGroup(
        "ce18edbdcebf465e9d6d1d2fc80ffd42", "Notifications Read", ACCOUNT_SCOPE, "alerting:read", "Read alerting"
    ),
    PermissionGroup(
        "c3c847c5802d4ce3ba00e3e97b3c8555", "Notifications Write", ACCOUNT_SCOPE, "alerting:edit", "Edit alerting"
    ),
    PermissionGroup("0cc3a61731504c89b99ec1be78b77aa0", "API Tokens Read", USER_SCOPE, "tokens:read", "Read tokens"),
    PermissionGroup("686d18d5ac6c441c867cbf6771e58a0a", "API Tokens Write", USER_SCOPE, "tokens:edit", "Edit tokens"),
    PermissionGroup(
        "eb56a6953c034b9d97dd838155666f06", "Account API Tokens Read", ACCOUNT_SCOPE, "tokens:read", "Read tokens"
    ),
    PermissionGroup(
        "5bc3f8b21c554832afc660159ab75fa4", "Account API Tokens Write", ACCOUNT_SCOPE, "tokens:edit", "Edit tokens"
    ),
)

#: What a token may be granted. ``*:edit`` implies ``*:read``; ``*`` (admin) grants everything.
PERMISSIONS: Final = tuple(dict.fromkeys(g.permission for g in GROUPS))
_BY_ID: Final = {g.id: g for g in GROUPS}


def _implies(granted: frozenset[str], permission: str) -> bool:
    if "*" in granted or permission in granted:
        return True
    resource, _, level = permission.partition(":")
    return level == "read" and f"{resource}:edit" in granted


@dataclass(frozen=True)
class Policy:
    id: str
    effect: Literal["allow", "deny"]
    #: Our permission names (``*`` for everything).
    permissions: frozenset[str]
    #: None: every zone and the account itself.
    zones: frozenset[str] | None

    def grants(self, permission: str) -> bool:
        """Whether this allow policy grants ``permission`` (somewhere)."""
        return _implies(self.permissions, permission)

    def denies(self, permission: str) -> bool:
        """Whether this deny policy names ``permission``; a deny is literal (denying edit leaves read)."""
        return "*" in self.permissions or permission in self.permissions

    def covers(self, zone_id: str | None) -> bool:
        """Whether the policy reaches ``zone_id`` (None: the whole account)."""
        return self.zones is None or (zone_id is not None and zone_id in self.zones)


def flat_policy(permissions: Iterable[str], zone_ids: Iterable[str] | None) -> Policy:
    """Our flat body (``permissions``, ``zones``) as the one allow policy it means."""
    zones = frozenset(zone_ids) if zone_ids is not None else None
    return Policy(uuid.uuid4().hex, "allow", frozenset(permissions), zones)


class PolicyError(ValueError):
    """A policy that cannot be read; the message names the member."""


def _resources(value: object, where: str, accounts: set[str]) -> frozenset[str] | None:
    if not isinstance(value, Mapping) or not value:
        raise PolicyError(f"{where}: resources must be a non-empty object")
    zones: set[str] = set()
    for key, scope in value.items():
        key = str(key)
        if key.startswith(f"{ZONE_SCOPE}."):
            zone = key.removeprefix(f"{ZONE_SCOPE}.")
            if scope != "*":
                raise PolicyError(f'{where}: the value of {key} must be "*"')
            if zone == "*":
                return None
            zones.add(zone)
        elif key.startswith(f"{ACCOUNT_SCOPE}."):
            account = key.removeprefix(f"{ACCOUNT_SCOPE}.")
            if account != "*" and account not in accounts:
                raise PolicyError(f"{where}: account {account} does not exist")
            if scope == "*":
                return None
            nested = _resources(scope, f"{where}.{key}", accounts)  # {"...account.zone.*": "*"} and the like
            if nested is None:
                return None
            zones |= nested
        elif key.startswith(f"{USER_SCOPE}."):
            return None  # the user's own resources (its tokens): not limited to zones
        else:
            raise PolicyError(f"{where}: unknown resource {key!r} (use {ZONE_SCOPE}.<zone id> or {ACCOUNT_SCOPE}.<id>)")
    return frozenset(zones)


def parse_policies(body: object, accounts: set[str]) -> tuple[Policy, ...]:
    """Cloudflare's ``policies`` array as policies; raises :class:`PolicyError` naming the first bad member."""
    if not isinstance(body, list) or not body:
        raise PolicyError("policies must be a non-empty array")
    out: list[Policy] = []
    for index, item in enumerate(body):
        where = f"policies/{index}"
        if not isinstance(item, Mapping):
            raise PolicyError(f"{where} must be an object")
        effect = item.get("effect")
        if effect not in ("allow", "deny"):
            raise PolicyError(f"{where}/effect must be allow or deny")
        groups = item.get("permission_groups")
        if not isinstance(groups, list) or not groups:
            raise PolicyError(f"{where}/permission_groups must be a non-empty array")
        permissions: set[str] = set()
        for group in groups:
            group_id = group.get("id") if isinstance(group, Mapping) else None
            if group_id not in _BY_ID:
                raise PolicyError(
                    f"{where}/permission_groups: unknown permission group {group_id!r}; "
                    "GET /user/tokens/permission_groups lists the ones originlock enforces"
                )
            permissions.add(_BY_ID[str(group_id)].permission)
        zones = _resources(item.get("resources"), f"{where}/resources", accounts)
        policy_id = item.get("id") if isinstance(item.get("id"), str) and item.get("id") else uuid.uuid4().hex
        out.append(Policy(str(policy_id), effect, frozenset(permissions), zones))
    return tuple(out)


def policies_to_json(policies: Iterable[Policy]) -> list[dict[str, Any]]:
    """The stored form (our permission names and zone ids)."""
    return [
        {
            "id": p.id,
            "effect": p.effect,
            "permissions": sorted(p.permissions),
            "zones": sorted(p.zones) if p.zones is not None else None,
        }
        for p in policies
    ]


def policies_from_json(items: Iterable[Mapping[str, Any]]) -> tuple[Policy, ...]:
    return tuple(
        Policy(
            i["id"],
            i["effect"],
            frozenset(i["permissions"]),
            frozenset(i["zones"]) if i["zones"] is not None else None,
        )
        for i in items
    )


def _groups_for(permissions: frozenset[str]) -> list[PermissionGroup]:
    # One group per permission; the tokens permissions render as the user-level groups (API Tokens ...).
    seen: dict[str, PermissionGroup] = {}
    for group in GROUPS:
        if group.scope == ACCOUNT_SCOPE and group.permission.startswith("tokens:"):
            continue
        if "*" in permissions or group.permission in permissions:
            seen.setdefault(group.permission, group)
    return list(seen.values())


def policies_to_cloudflare(policies: Iterable[Policy], account_id: str) -> list[dict[str, Any]]:
    """Policies as Cloudflare returns them: permission groups by id and name, resources by Cloudflare's keys."""
    out: list[dict[str, Any]] = []
    for p in policies:
        if p.zones is None:
            resources: dict[str, Any] = {f"{ACCOUNT_SCOPE}.{account_id}": "*"}
        else:
            resources = {f"{ZONE_SCOPE}.{z}": "*" for z in sorted(p.zones)}
        groups = [
            {"id": g.id, "name": g.name, "meta": {"label": g.permission, "scopes": g.scope}}
            for g in _groups_for(p.permissions)
        ]
        out.append({"id": p.id, "effect": p.effect, "permission_groups": groups, "resources": resources})
    return out
