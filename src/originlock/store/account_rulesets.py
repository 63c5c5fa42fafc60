"""Account-level rulesets: custom rulesets deployed to the account's zones from the account entry point.

Cloudflare's model: an account holds ``kind: custom`` rulesets (ordinary rules of one phase) and, per phase, one
``kind: root`` entry point whose rules are ``execute`` rules: ``action_parameters.id`` names a custom ruleset and
the rule's expression says where it runs, typically ``cf.zone.name in {"a.test" "b.test"}``. Every zone of the
account then evaluates, in that phase and before its own zone ruleset, each executed custom ruleset in entry
point order, each rule guarded by ``(execute expression) and (rule expression)``. :func:`zone_rulesets` compiles
exactly that for the snapshot; a ``skip`` with ``ruleset: current`` ends only that custom ruleset, as at
Cloudflare. Versions are kept per ruleset as for zone rulesets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from originlock.store import schema
from originlock.store.db import now_iso
from originlock.store.errors import Invalid, NotFound
from originlock.store.ruleset_rules import (  # SOURCE_PREFIX, compile_sources: re-exported, see there
    SOURCE_PREFIX,
    RulesetInvalid,
    check_rules,
    compile_sources,
    normalize_rule,
    parse_phase,
)
from originlock.store.stamps import new_id
from originlock.waf import Phase
from originlock.waf.rules import CompiledRuleset

__all__ = [
    "SOURCE_PREFIX",
    "add_rule",
    "compile_sources",
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
    "merge_into",
    "put_entrypoint",
    "update_ruleset",
    "zone_rulesets",
    "zone_sources",
]

log = logging.getLogger("originlock.rulesets")
NOT_FOUND = 10003
#: Phases whose rules can be deployed from the account (the others stay per zone).
ACCOUNT_PHASES = (Phase.HTTP_REQUEST_FIREWALL_CUSTOM, Phase.HTTP_RATELIMIT)
_DEFINITION = ("action", "expression", "description", "enabled", "action_parameters", "ratelimit", "logging")


def _account(conn: Connection, account_id: str) -> None:
    if conn.execute(select(schema.accounts.c.id).where(schema.accounts.c.id == account_id)).first() is None:
        raise NotFound(f"account {account_id} not found", 1001)


def _phase(value: object) -> Phase:
    phase = parse_phase(value)
    if phase not in ACCOUNT_PHASES:
        allowed = ", ".join(p.value for p in ACCOUNT_PHASES)
        raise RulesetInvalid(f"phase {phase.value} cannot be deployed from an account; use one of {allowed}", "/phase")
    return phase


def get_ruleset(conn: Connection, account_id: str, ruleset_id: str) -> Row[Any]:
    _account(conn, account_id)
    t = schema.account_rulesets
    row = conn.execute(select(t).where(t.c.account_id == account_id, t.c.id == ruleset_id)).first()
    if row is None:
        raise NotFound(f"could not find ruleset {ruleset_id}", NOT_FOUND)
    return row


def list_rulesets(conn: Connection, account_id: str) -> list[Row[Any]]:
    _account(conn, account_id)
    t = schema.account_rulesets
    return list(conn.execute(select(t).where(t.c.account_id == account_id).order_by(t.c.name, t.c.id)))


def _entrypoint_row(conn: Connection, account_id: str, phase: Phase) -> Row[Any] | None:
    t = schema.account_rulesets
    query = select(t).where(t.c.account_id == account_id, t.c.kind == "root", t.c.phase == phase.value)
    return conn.execute(query).first()


def get_entrypoint(conn: Connection, account_id: str, phase_name: str) -> Row[Any]:
    _account(conn, account_id)
    phase = _phase(phase_name)
    row = _entrypoint_row(conn, account_id, phase)
    if row is None:
        raise NotFound(f"could not find entrypoint ruleset in the {phase.value} phase", NOT_FOUND)
    return row


def _stamp(rule: dict[str, Any], previous: Mapping[str, Any] | None, version: int, now: str) -> dict[str, Any]:
    same = previous is not None and all(previous.get(k) == rule.get(k) for k in _DEFINITION)
    rule_id = previous["id"] if previous is not None else new_id()
    return {
        "id": rule_id,
        "ref": rule.get("ref") or (previous or {}).get("ref") or rule_id,
        "version": previous["version"] if same and previous else str(version),
        **{k: rule[k] for k in _DEFINITION if k in rule},
        "last_updated": previous["last_updated"] if same and previous else now,
    }


def _check_execute(conn: Connection, account_id: str, phase: Phase, rule: Mapping[str, Any], base: str) -> None:
    if rule["action"] != "execute":
        raise RulesetInvalid("rules of an account entry point must use the execute action", f"{base}/action")
    target = (rule.get("action_parameters") or {}).get("id")
    t = schema.account_rulesets
    found = conn.execute(select(t.c.phase, t.c.kind).where(t.c.account_id == account_id, t.c.id == str(target))).first()
    if not isinstance(target, str) or found is None or found.kind != "custom" or found.phase != phase.value:
        raise RulesetInvalid(
            f"action_parameters.id must name a custom ruleset of this account in the {phase.value} phase",
            f"{base}/action_parameters/id",
        )
    if "cf.zone.name" not in rule["expression"]:
        raise RulesetInvalid("an account-level execute rule must select zones with cf.zone.name", f"{base}/expression")
    probe = {**rule, "id": "probe", "action": "log", "action_parameters": {}}
    probe.pop("ratelimit", None)
    check_rules(Phase.HTTP_REQUEST_FIREWALL_CUSTOM, [probe], body_index=None)


def _rules(
    conn: Connection,
    row_kind: str,
    account_id: str,
    phase: Phase,
    current: Sequence[Mapping[str, Any]],
    inputs: object,
    version: int,
    now: str,
) -> list[dict[str, Any]]:
    if not isinstance(inputs, list):
        raise RulesetInvalid("rules must be a list", "/rules")
    by_id = {r["id"]: r for r in current}
    by_ref = {r.get("ref"): r for r in current}
    out = []
    for i, raw in enumerate(inputs):
        base = f"/rules/{i}"
        # Execute rules are checked here; custom rules by the WAF compiler for their phase, as zone rules are.
        rule = normalize_rule(raw, base, Phase.HTTP_REQUEST_FIREWALL_MANAGED if row_kind == "root" else phase)
        if row_kind == "root":
            _check_execute(conn, account_id, phase, rule, base)
        given = raw.get("id") if isinstance(raw, dict) else None
        previous = by_id.get(given) if given is not None else by_ref.get(rule.get("ref"))
        if given is not None and previous is None:
            raise RulesetInvalid(f"rule id {given!r} does not exist in this ruleset", f"{base}/id")
        out.append(_stamp(rule, previous, version, now))
    if row_kind == "custom":
        check_rules(phase, out)
    return out


def _record(conn: Connection, row: Row[Any]) -> Row[Any]:
    conn.execute(
        insert(schema.account_ruleset_versions).values(
            ruleset_id=row.id,
            version=row.version,
            account_id=row.account_id,
            name=row.name,
            description=row.description,
            kind=row.kind,
            phase=row.phase,
            rules=row.rules,
            last_updated=row.last_updated,
        )
    )
    return row


def _insert(conn: Connection, account_id: str, kind: str, phase: Phase, body: Mapping[str, Any]) -> Row[Any]:
    now = now_iso()
    name = body.get("name") or (f"{phase.value} entry point" if kind == "root" else None)
    if not isinstance(name, str) or not name.strip():
        raise RulesetInvalid("name is required", "/name")
    ruleset_id = new_id()
    rules = _rules(conn, kind, account_id, phase, [], body.get("rules", []), 1, now)
    description = body.get("description", "")
    if not isinstance(description, str):
        raise RulesetInvalid("description must be a string", "/description")
    conn.execute(
        insert(schema.account_rulesets).values(
            id=ruleset_id,
            account_id=account_id,
            name=name,
            description=description,
            kind=kind,
            phase=phase.value,
            version=1,
            rules=json.dumps(rules),
            last_updated=now,
        )
    )
    return _record(conn, get_ruleset(conn, account_id, ruleset_id))


def create_ruleset(conn: Connection, account_id: str, body: Mapping[str, Any]) -> Row[Any]:
    _account(conn, account_id)
    phase = _phase(body.get("phase"))
    kind = body.get("kind", "custom")
    if kind not in ("custom", "root"):
        raise RulesetInvalid("kind must be custom or root at account level", "/kind")
    if kind == "root" and _entrypoint_row(conn, account_id, phase) is not None:
        raise RulesetInvalid(f"the {phase.value} phase already has an entry point ruleset", "/kind")
    return _insert(conn, account_id, kind, phase, body)


def _save(conn: Connection, row: Row[Any], body: Mapping[str, Any], rules_input: object) -> Row[Any]:
    version, now = row.version + 1, now_iso()
    rules = _rules(conn, row.kind, row.account_id, Phase(row.phase), json.loads(row.rules), rules_input, version, now)
    description = body.get("description", row.description)
    if not isinstance(description, str):
        raise RulesetInvalid("description must be a string", "/description")
    t = schema.account_rulesets
    conn.execute(
        update(t)
        .where(t.c.id == row.id)
        .values(rules=json.dumps(rules), version=version, last_updated=now, description=description)
    )
    return _record(conn, get_ruleset(conn, row.account_id, row.id))


def update_ruleset(conn: Connection, account_id: str, ruleset_id: str, body: Mapping[str, Any]) -> Row[Any]:
    row = get_ruleset(conn, account_id, ruleset_id)
    for key in ("kind", "phase"):
        if key in body and body[key] != getattr(row, key):
            raise RulesetInvalid(f"{key} of a ruleset cannot change", f"/{key}")
    return _save(conn, row, body, body.get("rules", []))


def put_entrypoint(conn: Connection, account_id: str, phase_name: str, body: Mapping[str, Any]) -> Row[Any]:
    _account(conn, account_id)
    phase = _phase(phase_name)
    row = _entrypoint_row(conn, account_id, phase)
    if row is None:
        return _insert(conn, account_id, "root", phase, body)
    return _save(conn, row, body, body.get("rules", []))


def delete_ruleset(conn: Connection, account_id: str, ruleset_id: str) -> None:
    row = get_ruleset(conn, account_id, ruleset_id)
    for root in conn.execute(select(schema.account_rulesets).where(schema.account_rulesets.c.kind == "root")):
        if any((r.get("action_parameters") or {}).get("id") == row.id for r in json.loads(root.rules)):
            raise Invalid(
                f"ruleset {row.id} is executed by the {root.phase} entry point; remove that rule first", 10001
            )
    conn.execute(delete(schema.account_ruleset_versions).where(schema.account_ruleset_versions.c.ruleset_id == row.id))
    conn.execute(delete(schema.account_rulesets).where(schema.account_rulesets.c.id == row.id))


def _version_select() -> Any:
    v = schema.account_ruleset_versions
    # Labelled like a ruleset row, so store.rulesets.ruleset_json renders a version as Cloudflare does.
    return select(
        v.c.ruleset_id.label("id"),
        v.c.version,
        v.c.name,
        v.c.description,
        v.c.kind,
        v.c.phase,
        v.c.rules,
        v.c.last_updated,
    )


def list_versions(conn: Connection, current: Row[Any]) -> list[Row[Any]]:
    v = schema.account_ruleset_versions
    return list(conn.execute(_version_select().where(v.c.ruleset_id == current.id).order_by(v.c.version.desc())))


def _number(value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise NotFound(f"could not find version {value[:20]}", NOT_FOUND)
    return int(value)


def get_version(conn: Connection, current: Row[Any], version: str) -> Row[Any]:
    v = schema.account_ruleset_versions
    number = _number(version)
    row = conn.execute(_version_select().where(v.c.ruleset_id == current.id, v.c.version == number)).first()
    if row is None:
        raise NotFound(f"could not find version {number} of ruleset {current.id}", NOT_FOUND)
    return row


def delete_version(conn: Connection, current: Row[Any], version: str) -> None:
    row = get_version(conn, current, version)
    if row.version == current.version:
        raise Invalid("the current version of a ruleset cannot be deleted", 10001)
    v = schema.account_ruleset_versions
    conn.execute(delete(v).where(v.c.ruleset_id == current.id, v.c.version == row.version))


def add_rule(conn: Connection, account_id: str, ruleset_id: str, body: Mapping[str, Any]) -> Row[Any]:
    row = get_ruleset(conn, account_id, ruleset_id)
    current = json.loads(row.rules)
    kept = [{k: r[k] for k in ("id", "ref", *_DEFINITION) if k in r} for r in current]
    return _save(conn, row, {}, [*kept, dict(body)])


def edit_rule(conn: Connection, account_id: str, ruleset_id: str, rule_id: str, body: Mapping[str, Any]) -> Row[Any]:
    row = get_ruleset(conn, account_id, ruleset_id)
    current = json.loads(row.rules)
    if rule_id not in {r["id"] for r in current}:
        raise NotFound(f"could not find rule {rule_id}", NOT_FOUND)
    merged = []
    for r in current:
        kept = {k: r[k] for k in ("id", "ref", *_DEFINITION) if k in r}
        merged.append({**kept, **dict(body), "id": r["id"]} if r["id"] == rule_id else kept)
    return _save(conn, row, {}, merged)


def delete_rule(conn: Connection, account_id: str, ruleset_id: str, rule_id: str) -> Row[Any]:
    row = get_ruleset(conn, account_id, ruleset_id)
    current = json.loads(row.rules)
    if rule_id not in {r["id"] for r in current}:
        raise NotFound(f"could not find rule {rule_id}", NOT_FOUND)
    kept = [{k: r[k] for k in ("id", "ref", *_DEFINITION) if k in r} for r in current if r["id"] != rule_id]
    return _save(conn, row, {}, kept)


#: Prefix of an account ruleset's id in a zone's ``waf_source`` (``snapshot/assembly.py``, the last-known-good
#: copy): those entries are compiled by :func:`compile_sources` and run before the zone's own rulesets.
def zone_sources(conn: Connection, zone_ids: Collection[str] | None = None) -> dict[str, list[tuple[str, str, str]]]:
    """Per zone (all, or ``zone_ids``): the account-level custom rulesets its account's entry points execute,
    in order, as ``(SOURCE_PREFIX + ruleset id, phase, guarded rules JSON)``; each rule is guarded by
    ``(execute expression) and (rule expression)``."""
    t = schema.account_rulesets
    rows = list(conn.execute(select(t)))
    if not rows:
        return {}
    custom = {r.id: r for r in rows if r.kind == "custom"}
    zones_by_account: dict[str, list[str]] = {}
    wanted = set(zone_ids) if zone_ids is not None else None
    query = select(schema.zones.c.id, schema.zones.c.account_id)
    if wanted is not None:  # a change's few zones: not a read of every zone
        query = query.where(schema.zones.c.id.in_(list(wanted)))
    for z in conn.execute(query):
        zones_by_account.setdefault(z.account_id, []).append(z.id)
    out: dict[str, list[tuple[str, str, str]]] = {}
    for root in (r for r in rows if r.kind == "root"):
        sources: list[tuple[str, str, str]] = []
        for execute in json.loads(root.rules):
            target = custom.get((execute.get("action_parameters") or {}).get("id", ""))
            if not execute.get("enabled", True) or target is None:
                continue
            guarded = [
                {**r, "expression": f"({execute['expression']}) and ({r['expression']})"}
                for r in json.loads(target.rules)
            ]
            sources.append((SOURCE_PREFIX + target.id, root.phase, json.dumps(guarded)))
        for zone_id in zones_by_account.get(root.account_id, []) if sources else []:
            out.setdefault(zone_id, []).extend(sources)
    return out


def zone_rulesets(
    conn: Connection, zone_ids: Collection[str] | None = None
) -> dict[str, dict[Phase, tuple[CompiledRuleset, ...]]]:
    """Per zone and phase, the compiled account-level rulesets its account's entry points execute, in order."""
    return {zone_id: compile_sources(sources) for zone_id, sources in zone_sources(conn, zone_ids).items()}


def merge_into(
    zone: dict[str, dict[Any, Any]], account: dict[str, dict[Phase, tuple[CompiledRuleset, ...]]]
) -> dict[str, dict[Any, Any]]:
    """Account-level rulesets run before the zone's own ruleset of the same phase."""
    for zone_id, phases in account.items():
        target = zone.setdefault(zone_id, {})
        for phase, compiled in phases.items():
            target[phase] = (*compiled, *target.get(phase, ()))
    return zone
