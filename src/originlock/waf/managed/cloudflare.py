"""The CRS as Cloudflare's "Cloudflare OWASP Core Ruleset": ids, the API listing, and overrides.

Theory of operation. Cloudflare exposes the OWASP ruleset as a managed ruleset (kind ``managed``,
id ``4814384a9e5d4991b9815dcfc25d2f1f``) whose rules each carry a 32-hex id and, as ``ref``, the CRS
rule id. A zone deploys it with an ``execute`` rule in its ``http_request_firewall_managed`` entry
point and configures it through ``action_parameters.overrides`` (Cloudflare's documented model):

- paranoia level: the categories ``paranoia-level-1`` .. ``-4``. As at Cloudflare, rules above PL1 are
  disabled by default; the level is the highest ``paranoia-level-N`` category that is enabled
  (``overrides.enabled: true`` enables every category; ``{"category": "paranoia-level-3", "enabled":
  false}`` then caps it at 2);
- the anomaly threshold and final action: an override of the score rule (949110, id
  ``6179ae15870a4bb7b2d480d4843b323c``) with ``score_threshold`` and ``action``; a ruleset-level
  ``overrides.action`` also sets the final action. Cloudflare's default threshold is 40 ("Medium");
- per-rule ``enabled`` / ``action`` by rule id, and ``enabled`` / ``action`` by any other category
  (CRS tags such as ``attack-sqli``, ``language-php``).

The same ruleset executed in the zone's ``http_response_firewall_managed`` entry point runs its response
rules (RESPONSE-95x, data leakage) with the same overrides; there the score rule is 959100 ("Outbound
Anomaly Score Exceeded", CRS default threshold 4), whose override takes ``score_threshold`` and ``action``.
Cloudflare's own OWASP ruleset has no response rules: this is originlock's extension (docs/waf.md).

``engine_config`` turns one execute rule's parameters into an :class:`EngineConfig` (validated, cached
by their JSON text: every zone with the same overrides shares one).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from .config import DEFAULT_TX
from .engine import EngineConfig
from .loader import CRS_VERSION, load_engine

__all__ = [
    "OUTBOUND_SCORE_RULE_REF",
    "OWASP_RULESET_ID",
    "OWASP_RULESET_NAME",
    "SCORE_RULE_ID",
    "OverrideError",
    "crs_rule_id",
    "engine_config",
    "managed_rules",
    "ruleset_summary",
]

OWASP_RULESET_ID: Final = "4814384a9e5d4991b9815dcfc25d2f1f"
OWASP_RULESET_NAME: Final = "Cloudflare OWASP Core Ruleset"
SCORE_RULE_ID: Final = "6179ae15870a4bb7b2d480d4843b323c"
"""Cloudflare's id of "949110: Inbound Anomaly Score Exceeded", the rule that applies the action."""
SCORE_RULE_REF: Final = 949110
OUTBOUND_SCORE_RULE_REF: Final = 959100
"""The CRS's "Outbound Anomaly Score Exceeded": the response phase's score rule (its id: ``rule_id_for``)."""
_SCORE_RULES: Final = frozenset({SCORE_RULE_REF, OUTBOUND_SCORE_RULE_REF})
DEFAULT_THRESHOLD: Final = 40
DEFAULT_OUTBOUND_THRESHOLD: Final = 4
"""The CRS's own outbound threshold (Cloudflare's OWASP ruleset has no response rules to take one from)."""
_LAST_UPDATED: Final = "2026-11-01T00:00:00.000000Z"
_ACTIONS: Final = frozenset({"block", "log", "challenge", "js_challenge", "managed_challenge"})


class OverrideError(ValueError):
    """Bad ``action_parameters``; ``pointer`` is relative to them (``/overrides/rules/0/id``)."""

    def __init__(self, message: str, pointer: str) -> None:
        super().__init__(message)
        self.pointer = pointer


def rule_id_for(crs_id: int) -> str:
    """The 32-hex id of a CRS rule in the managed ruleset (stable across releases)."""
    if crs_id == SCORE_RULE_REF:
        return SCORE_RULE_ID
    return hashlib.md5(f"owasp-crs:{crs_id}".encode(), usedforsecurity=False).hexdigest()


def _categories(tags: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        if tag.startswith("paranoia-level/"):
            out.append("paranoia-level-" + tag.rsplit("/", 1)[1])
        elif tag not in ("OWASP_CRS", "capec") and not tag.startswith(("OWASP_CRS/", "capec/", "PCI/")):
            out.append(tag)
    return out


@functools.cache
def managed_rules() -> tuple[dict[str, Any], ...]:
    """The ruleset's rules as the API shows them: every CRS rule that logs (scores or decides)."""
    out: list[dict[str, Any]] = []
    for rule in load_engine().rules.rules():
        if not rule.id or not rule.log:
            continue
        categories = _categories(rule.tags)
        if rule.id in _SCORE_RULES:
            categories = ["paranoia-level-1"]
        elif not any(c.startswith("paranoia-level-") for c in categories):
            categories.append("paranoia-level-1")
        out.append(
            {
                "id": rule_id_for(rule.id),
                "version": "1",
                "action": "block" if rule.id in _SCORE_RULES else "log",
                "categories": categories,
                "description": f"{rule.id}: {rule.msg}" if rule.msg else str(rule.id),
                "last_updated": _LAST_UPDATED,
                "ref": str(rule.id),
                "enabled": rule.paranoia == 1,
            }
        )
    return tuple(out)


@functools.cache
def _by_id() -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in managed_rules()}


def crs_rule_id(rule_id: str) -> int | None:
    """The CRS id of a managed rule id, or None."""
    rule = _by_id().get(rule_id)
    return int(rule["ref"]) if rule else None


def ruleset_summary(*, with_rules: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": OWASP_RULESET_ID,
        "name": OWASP_RULESET_NAME,
        "description": f"OWASP Core Rule Set {CRS_VERSION}, compiled into originlock's WAF engine",
        "kind": "managed",
        "version": "1",
        "phase": "http_request_firewall_managed",
        "last_updated": _LAST_UPDATED,
    }
    if with_rules:
        out["rules"] = [dict(rule) for rule in managed_rules()]
    return out


def _bool(value: object, pointer: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise OverrideError("enabled must be true or false", pointer)
    return value


def _action(value: object, pointer: str) -> str | None:
    if value is None:
        return None
    if value not in _ACTIONS:
        raise OverrideError(f"{value!r} is not a valid value for action", pointer)
    return str(value)


def _list(value: object, pointer: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OverrideError("must be a list", pointer)
    return value


def engine_config(params: Mapping[str, Any], *, skipped_rules: frozenset[str] = frozenset()) -> EngineConfig:
    """The engine settings of an execute rule's ``action_parameters`` (plus rules a ``skip`` removed).

    Raises:
        OverrideError: an unknown rule id, a bad action or threshold, with a pointer into the parameters.
    """
    return _config(json.dumps(params, sort_keys=True), skipped_rules)


@functools.lru_cache(maxsize=4096)
def _config(text: str, skipped_rules: frozenset[str]) -> EngineConfig:
    params = json.loads(text)
    overrides = params.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise OverrideError("overrides must be an object", "/overrides")
    every = _bool(overrides.get("enabled"), "/overrides/enabled")
    final_action = _action(overrides.get("action"), "/overrides/action") or "block"
    outbound_action = final_action
    levels = {1: True, 2: False, 3: False, 4: False}
    if every is not None:
        levels = dict.fromkeys(levels, every)
    by_category_enabled: dict[str, bool] = {}
    by_category_action: dict[str, str] = {}
    for n, item in enumerate(_list(overrides.get("categories"), "/overrides/categories")):
        base = f"/overrides/categories/{n}"
        if not isinstance(item, dict) or not isinstance(item.get("category"), str):
            raise OverrideError("a category override needs a category", base)
        category = item["category"]
        enabled = _bool(item.get("enabled"), f"{base}/enabled")
        action = _action(item.get("action"), f"{base}/action")
        if category.startswith("paranoia-level-") and category[-1:] in "1234" and len(category) == 16:
            if enabled is not None:
                levels[int(category[-1])] = enabled
            continue
        if enabled is not None:
            by_category_enabled[category] = enabled
        if action is not None:
            by_category_action[category] = action
    enabled_levels = [level for level, on in levels.items() if on]
    paranoia = max(enabled_levels) if enabled_levels else 0
    disabled: set[int] = set()
    actions: dict[int, str] = {}
    threshold = DEFAULT_THRESHOLD
    outbound_threshold = DEFAULT_OUTBOUND_THRESHOLD
    for rule in managed_rules():
        crs_id = int(rule["ref"])
        categories = rule["categories"]
        if any(by_category_enabled.get(c) is False for c in categories):
            disabled.add(crs_id)
        level = next((int(c[-1]) for c in categories if c.startswith("paranoia-level-")), 1)
        if level <= paranoia and not levels[level] and crs_id not in _SCORE_RULES:
            disabled.add(crs_id)  # a lower level switched off on its own: its rules stay off
        for category in categories:
            if category in by_category_action:
                actions[crs_id] = by_category_action[category]
    for n, item in enumerate(_list(overrides.get("rules"), "/overrides/rules")):
        base = f"/overrides/rules/{n}"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise OverrideError("a rule override needs the id of a rule of the ruleset", base)
        found = crs_rule_id(item["id"])
        if found is None:
            raise OverrideError(f"rule {item['id']} is not in the {OWASP_RULESET_NAME}", f"{base}/id")
        crs_id = found
        enabled = _bool(item.get("enabled"), f"{base}/enabled")
        action = _action(item.get("action"), f"{base}/action")
        if enabled is False:
            disabled.add(crs_id)
        elif enabled is True:
            disabled.discard(crs_id)
        if "score_threshold" in item:
            value = item["score_threshold"]
            if crs_id not in _SCORE_RULES:
                raise OverrideError(
                    "score_threshold can only be set on the score rules (949110, 959100)", f"{base}/score_threshold"
                )
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise OverrideError("score_threshold must be a positive integer", f"{base}/score_threshold")
            if crs_id == SCORE_RULE_REF:
                threshold = value
            else:
                outbound_threshold = value
        if action is not None:
            if crs_id == SCORE_RULE_REF:
                final_action = action
            elif crs_id == OUTBOUND_SCORE_RULE_REF:
                outbound_action = action
            else:
                actions[crs_id] = action
    for rule_id in skipped_rules:
        skipped = crs_rule_id(rule_id)
        if skipped is not None:
            disabled.add(skipped)
    if paranoia == 0:
        disabled.update(int(rule["ref"]) for rule in managed_rules())
    actions[SCORE_RULE_REF] = final_action
    actions[OUTBOUND_SCORE_RULE_REF] = outbound_action
    return EngineConfig(
        paranoia_level=max(paranoia, 1),
        threshold=threshold,
        outbound_threshold=outbound_threshold,
        disabled=frozenset(disabled),
        actions=tuple(sorted(actions.items())),
        tx=DEFAULT_TX,
    )
