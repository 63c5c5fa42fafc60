"""Rulesets (Cloudflare's Rulesets API, spec §2): one ``zone`` entry point per zone and phase.

Versions follow Cloudflare's model: every write bumps the ruleset's version; a rule carries the version
in which its definition last changed, so reordering does not change a rule's version. Rule ids are kept
across a full replace (``PUT``) when the rule is sent back with its ``id`` or its ``ref``; other rules get
new ids, and ``ref`` defaults to the id (Terraform keys rules on ``ref``).

Every write also records the new version's full state in ``ruleset_versions`` (same transaction), so
``GET .../versions[/{n}]`` can answer for any version kept; ``DELETE .../versions/{n}`` drops an old one
(never the current one). The ``rulesets`` row stays the source of truth for the current version: a ruleset
written before the history table existed lists its current version even though it has no history row.

Only ``kind: zone`` rulesets exist at zone level here (account-level and custom rulesets are not
implemented), so a zone ruleset *is* its phase's entry point.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from originlock.store import schema
from originlock.store.db import now_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.ruleset_rules import RulesetInvalid, check_rules, normalize_rule, parse_phase
from originlock.store.stamps import new_id
from originlock.store.zones import get_zone
from originlock.waf import Phase

__all__ = [
    "Position",
    "add_rule",
    "create_ruleset",
    "delete_rule",
    "delete_ruleset",
    "delete_version",
    "edit_rule",
    "get_entrypoint",
    "get_ruleset",
    "get_version",
    "list_rulesets",
    "list_versions",
    "put_entrypoint",
    "ruleset_json",
    "update_ruleset",
]

#: Cloudflare's code for "could not find entrypoint ruleset in the <phase> phase"; used for every
#: missing ruleset or rule.
NOT_FOUND = 10003
#: Versions are stored as 32-bit integers (PostgreSQL ``integer``); a larger number cannot exist.
_MAX_VERSION = 2**31 - 1
_DEFINITION = ("action", "expression", "description", "enabled", "action_parameters", "ratelimit", "logging")
Position = Mapping[str, Any]


def ruleset_json(row: Row[Any], *, with_rules: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "kind": row.kind,
        "version": str(row.version),
        "phase": row.phase,
        "last_updated": row.last_updated,
    }
    if with_rules:
        out["rules"] = json.loads(row.rules)
    return out


def get_ruleset(conn: Connection, zone_id: str, ruleset_id: str, *, for_update: bool = False) -> Row[Any]:
    """The ruleset row; ``for_update`` locks it until the transaction ends (PostgreSQL; SQLite already
    admits one writer at a time), so two concurrent edits each read the version the other wrote instead of
    both writing version n+1 (a primary-key failure on ``ruleset_versions``)."""
    get_zone(conn, zone_id)
    t = schema.rulesets
    query = select(t).where(t.c.zone_id == zone_id, t.c.id == ruleset_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise NotFound(f"could not find ruleset {ruleset_id}", NOT_FOUND)
    return row


def _entrypoint_row(conn: Connection, zone_id: str, phase: Phase) -> Row[Any] | None:
    t = schema.rulesets
    return conn.execute(select(t).where(t.c.zone_id == zone_id, t.c.phase == phase.value, t.c.kind == "zone")).first()


def get_entrypoint(conn: Connection, zone_id: str, phase_name: str) -> Row[Any]:
    """The zone's entry point for ``phase_name``; 404 (10003) when it was never created, as at Cloudflare."""
    get_zone(conn, zone_id)
    phase = parse_phase(phase_name, "/phase")
    row = _entrypoint_row(conn, zone_id, phase)
    if row is None:
        raise NotFound(f"could not find entrypoint ruleset in the {phase.value} phase", NOT_FOUND)
    return row


def list_rulesets(
    conn: Connection, zone_id: str, *, cursor: str | None, limit: int
) -> tuple[list[Row[Any]], str | None]:
    """Rulesets ordered by id, after ``cursor`` (the last id of the previous page); returns the next cursor."""
    get_zone(conn, zone_id)
    t = schema.rulesets
    query = select(t).where(t.c.zone_id == zone_id)
    if cursor:
        query = query.where(t.c.id > cursor)
    rows = list(conn.execute(query.order_by(t.c.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more and rows else None


def _rules_input(body: Mapping[str, Any]) -> list[Any]:
    rules = body.get("rules", [])
    if not isinstance(rules, list):
        raise RulesetInvalid("rules must be a list", "/rules")
    return rules


def _description(body: Mapping[str, Any], default: str) -> str:
    value = body.get("description", default)
    if not isinstance(value, str):
        raise RulesetInvalid("description must be a string", "/description")
    return value


def _definition(rule: Mapping[str, Any]) -> dict[str, Any]:
    return {k: rule[k] for k in _DEFINITION if k in rule}


def _stamp(
    rule: dict[str, Any], rule_id: str, ref: str, previous: Mapping[str, Any] | None, version: int, now: str
) -> dict[str, Any]:
    """Assign id/ref; keep the old version and timestamp when the definition is unchanged."""
    unchanged = previous is not None and _definition(previous) == _definition(rule)
    stamped = {
        "id": rule_id,
        "ref": ref,
        "version": previous["version"] if unchanged and previous else str(version),
        **_definition(rule),
        "last_updated": previous["last_updated"] if unchanged and previous else now,
    }
    return stamped


def _replace_rules(
    phase: Phase, current: Sequence[Mapping[str, Any]], inputs: Sequence[Any], version: int, now: str
) -> list[dict[str, Any]]:
    by_id = {r["id"]: r for r in current}
    by_ref = {r.get("ref"): r for r in current}
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(inputs):
        base = f"/rules/{i}"
        rule = normalize_rule(raw, base, phase)
        given_id = raw.get("id")
        previous: Mapping[str, Any] | None = None
        if given_id is not None:
            previous = by_id.get(given_id)
            if previous is None:
                raise RulesetInvalid(f"rule id {given_id!r} does not exist in this ruleset", f"{base}/id")
        elif rule.get("ref") in by_ref:
            previous = by_ref[rule["ref"]]
        rule_id = previous["id"] if previous is not None else new_id()
        ref = rule.get("ref") or (previous.get("ref") if previous is not None else None) or rule_id
        out.append(_stamp(rule, rule_id, ref, previous, version, now))
    _check_unique(out)
    check_rules(phase, out)
    return out


def _check_unique(rules: Sequence[Mapping[str, Any]]) -> None:
    for key in ("id", "ref"):
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            if rule[key] in seen:
                raise RulesetInvalid(f"{key} {rule[key]!r} is used by more than one rule", f"/rules/{i}/{key}")
            seen.add(rule[key])


def _save(
    conn: Connection, row: Row[Any], rules: list[dict[str, Any]], version: int, now: str, description: str
) -> Row[Any]:
    t = schema.rulesets
    conn.execute(
        update(t)
        .where(t.c.id == row.id)
        .values(rules=json.dumps(rules), version=version, last_updated=now, description=description)
    )
    return _record(conn, get_ruleset(conn, row.zone_id, row.id))


def _record(conn: Connection, row: Row[Any]) -> Row[Any]:
    """Keep the state of ``row`` (just written) as its version in ``ruleset_versions``; returns ``row``."""
    conn.execute(
        insert(schema.ruleset_versions).values(
            ruleset_id=row.id,
            version=row.version,
            zone_id=row.zone_id,
            name=row.name,
            description=row.description,
            kind=row.kind,
            phase=row.phase,
            rules=row.rules,
            last_updated=row.last_updated,
        )
    )
    return row


def _insert(
    conn: Connection, zone_id: str, phase: Phase, name: str, description: str, inputs: Sequence[Any]
) -> Row[Any]:
    if _entrypoint_row(conn, zone_id, phase) is not None:
        raise RulesetInvalid(
            f"this zone already has a ruleset for the {phase.value} phase; change it with "
            f"PUT /zones/{zone_id}/rulesets/phases/{phase.value}/entrypoint",
            "/phase",
        )
    now = now_iso()
    rules = _replace_rules(phase, [], inputs, 1, now)
    ruleset_id = new_id()
    conn.execute(
        insert(schema.rulesets).values(
            id=ruleset_id,
            zone_id=zone_id,
            name=name,
            description=description,
            kind="zone",
            phase=phase.value,
            version=1,
            rules=json.dumps(rules),
            last_updated=now,
        )
    )
    return _record(conn, get_ruleset(conn, zone_id, ruleset_id))


def create_ruleset(conn: Connection, zone_id: str, body: Mapping[str, Any]) -> Row[Any]:
    get_zone(conn, zone_id)
    kind = body.get("kind", "zone")
    if kind != "zone":
        raise RulesetInvalid(
            f'kind {kind!r} is not supported at zone level; use "zone" (account and custom rulesets are not '
            "implemented)",
            "/kind",
        )
    name = body.get("name", "default")
    if not isinstance(name, str) or not name.strip():
        raise RulesetInvalid("name must be a non-empty string", "/name")
    phase = parse_phase(body.get("phase"))
    return _insert(conn, zone_id, phase, name, _description(body, ""), _rules_input(body))


def _check_immutable(row: Row[Any], body: Mapping[str, Any]) -> None:
    for key in ("name", "kind", "phase"):
        if key in body and body[key] != getattr(row, key):
            raise RulesetInvalid(f"{key} cannot be changed (it is {getattr(row, key)!r})", f"/{key}")


def update_ruleset(conn: Connection, zone_id: str, ruleset_id: str, body: Mapping[str, Any]) -> Row[Any]:
    """Replace the rules (and description) of a ruleset: every rule to keep must be sent."""
    row = get_ruleset(conn, zone_id, ruleset_id, for_update=True)
    _check_immutable(row, body)
    version, now = row.version + 1, now_iso()
    rules = _replace_rules(Phase(row.phase), json.loads(row.rules), _rules_input(body), version, now)
    return _save(conn, row, rules, version, now, _description(body, row.description))


def put_entrypoint(conn: Connection, zone_id: str, phase_name: str, body: Mapping[str, Any]) -> Row[Any]:
    """Replace the entry point's rules, creating it (``name`` "default", version 1) when absent."""
    get_zone(conn, zone_id)
    phase = parse_phase(phase_name, "/phase")
    row = _entrypoint_row(conn, zone_id, phase)
    if row is None:
        name = body.get("name", "default")
        if not isinstance(name, str) or not name.strip():
            raise RulesetInvalid("name must be a non-empty string", "/name")
        return _insert(conn, zone_id, phase, name, _description(body, ""), _rules_input(body))
    return update_ruleset(conn, zone_id, row.id, {k: v for k, v in body.items() if k != "name"})


def delete_ruleset(conn: Connection, zone_id: str, ruleset_id: str) -> None:
    row = get_ruleset(conn, zone_id, ruleset_id, for_update=True)
    # Versions first: the foreign key cascades too, but being explicit keeps both backends identical.
    conn.execute(delete(schema.ruleset_versions).where(schema.ruleset_versions.c.ruleset_id == row.id))
    conn.execute(delete(schema.rulesets).where(schema.rulesets.c.id == row.id))


# --- versions -----------------------------------------------------------------------------------


def _version_number(value: str) -> int:
    """The version named in a path: a positive decimal integer (Cloudflare's versions are "1", "2", ...)."""
    shown = value if len(value) <= 20 else value[:20] + "..."
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 1 <= int(value) <= _MAX_VERSION:
        raise Invalid(f'version must be an integer from 1 to {_MAX_VERSION} such as "1", not {shown!r}', 1004)
    return int(value)


def _version_columns(*, with_rules: bool) -> list[Any]:
    t = schema.ruleset_versions
    skip = {"ruleset_id"} if with_rules else {"ruleset_id", "rules"}
    return [t.c.ruleset_id.label("id"), *(c for c in t.c if c.name not in skip)]


def list_versions(conn: Connection, current: Row[Any]) -> list[Row[Any]]:
    """Every kept version of the ruleset ``current`` (a ``rulesets`` row), newest first, without rules."""
    t = schema.ruleset_versions
    query = select(*_version_columns(with_rules=False)).where(t.c.ruleset_id == current.id)
    rows = list(conn.execute(query.order_by(t.c.version.desc())))
    if not rows or rows[0].version != current.version:
        rows.insert(0, current)  # written before versions were kept
    return rows


def _missing(current: Row[Any], number: int) -> NotFound:
    return NotFound(
        f"version {number} of ruleset {current.id} does not exist (never made, or deleted); "
        f"the current version is {current.version}",
        NOT_FOUND,
    )


def get_version(conn: Connection, current: Row[Any], version: str) -> Row[Any]:
    """One version of the ruleset ``current``, with its rules as they were."""
    number = _version_number(version)
    if number == current.version:
        return current
    if number > current.version:
        raise _missing(current, number)
    t = schema.ruleset_versions
    query = select(*_version_columns(with_rules=True)).where(t.c.ruleset_id == current.id, t.c.version == number)
    row = conn.execute(query).first()
    if row is None:
        raise _missing(current, number)
    return row


def delete_version(conn: Connection, current: Row[Any], version: str) -> None:
    """Delete an old version; the current one cannot be (as at Cloudflare). Numbers are never reused."""
    number = _version_number(version)
    if number == current.version:
        raise Invalid(
            f"version {number} is the current version of ruleset {current.id} and cannot be deleted; "
            "only older versions can (delete the ruleset to remove every version)",
            1004,
        )
    if number > current.version:
        raise _missing(current, number)
    t = schema.ruleset_versions
    deleted = conn.execute(delete(t).where(t.c.ruleset_id == current.id, t.c.version == number))
    if deleted.rowcount == 0:
        raise _missing(current, number)


# --- single rules -------------------------------------------------------------------------------


def _place(rules: list[dict[str, Any]], rule: dict[str, Any], position: Position | None, default_index: int) -> None:
    """Insert ``rule`` per ``position`` (spec §2.2): exactly one of before / after / index (1-based)."""
    if position is None:
        rules.insert(default_index, rule)
        return
    if not isinstance(position, dict) or len(position) != 1 or next(iter(position)) not in ("before", "after", "index"):
        raise RulesetInvalid("position must have exactly one of before, after or index", "/position")
    key, value = next(iter(position.items()))
    if key == "index":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= len(rules) + 1:
            raise RulesetInvalid(f"position.index must be between 1 and {len(rules) + 1}", "/position/index")
        rules.insert(value - 1, rule)
        return
    if not isinstance(value, str):
        raise RulesetInvalid(f"position.{key} must be a rule id", f"/position/{key}")
    if value == "":
        rules.insert(0 if key == "before" else len(rules), rule)  # "" means first / last
        return
    ids = [r["id"] for r in rules]
    if value not in ids:
        raise RulesetInvalid(f"position.{key}: rule {value!r} is not in this ruleset", f"/position/{key}")
    index = ids.index(value)
    rules.insert(index if key == "before" else index + 1, rule)


def _finish(
    conn: Connection, row: Row[Any], rules: list[dict[str, Any]], version: int, now: str, index: int | None
) -> Row[Any]:
    _check_unique(rules)
    check_rules(Phase(row.phase), rules, body_index=index)
    return _save(conn, row, rules, version, now, row.description)


def add_rule(conn: Connection, zone_id: str, ruleset_id: str, body: Mapping[str, Any]) -> Row[Any]:
    """Add one rule (last unless ``position`` says otherwise); returns the whole ruleset."""
    row = get_ruleset(conn, zone_id, ruleset_id, for_update=True)
    version, now = row.version + 1, now_iso()
    rule = normalize_rule(dict(body), "", Phase(row.phase))
    rule_id = new_id()
    stamped = _stamp(rule, rule_id, rule.get("ref") or rule_id, None, version, now)
    rules: list[dict[str, Any]] = json.loads(row.rules)
    _place(rules, stamped, body.get("position"), len(rules))
    return _finish(conn, row, rules, version, now, rules.index(stamped))


def edit_rule(conn: Connection, zone_id: str, ruleset_id: str, rule_id: str, body: Mapping[str, Any]) -> Row[Any]:
    """PATCH a rule: a body with only ``position`` moves it; otherwise the body is its new definition.

    As at Cloudflare, a definition update replaces the rule: members left out are reset to their
    defaults (``ref`` is kept when not sent, so Terraform's keys stay stable).
    """
    row = get_ruleset(conn, zone_id, ruleset_id, for_update=True)
    version, now = row.version + 1, now_iso()
    rules: list[dict[str, Any]] = json.loads(row.rules)
    ids = [r["id"] for r in rules]
    if rule_id not in ids:
        raise NotFound(f"could not find rule {rule_id} in ruleset {ruleset_id}", NOT_FOUND)
    index = ids.index(rule_id)
    previous = rules.pop(index)
    definition = {k: v for k, v in body.items() if k not in ("position", "id")}
    if definition:
        rule = normalize_rule(definition, "", Phase(row.phase))
        updated = _stamp(rule, rule_id, rule.get("ref") or previous["ref"], previous, version, now)
    else:
        updated = previous
    _place(rules, updated, body.get("position"), index)
    return _finish(conn, row, rules, version, now, rules.index(updated))


def delete_rule(conn: Connection, zone_id: str, ruleset_id: str, rule_id: str) -> Row[Any]:
    row = get_ruleset(conn, zone_id, ruleset_id, for_update=True)
    rules: list[dict[str, Any]] = json.loads(row.rules)
    kept = [r for r in rules if r["id"] != rule_id]
    if len(kept) == len(rules):
        raise NotFound(f"could not find rule {rule_id} in ruleset {ruleset_id}", NOT_FOUND)
    return _save(conn, row, kept, row.version + 1, now_iso(), row.description)
