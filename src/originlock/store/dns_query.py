"""Filtering and ordering DNS records the way Cloudflare's list endpoint does (5.x filter syntax).

Pure: a :class:`RecordQuery` and the zone's records in, the matching records in order out. A zone's record
set is small enough (thousands, not millions) that matching in Python is both exact and simple; doing it in
SQL would need ``LIKE`` escaping and case rules that differ between SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from originlock.store.errors import Invalid

__all__ = ["ORDERS", "TEXT_OPS", "RecordQuery", "apply_query", "text_matches"]

TEXT_OPS = ("exact", "contains", "startswith", "endswith")
ORDERS = ("type", "name", "content", "ttl", "proxied")


def text_matches(value: str | None, op: str, operand: str, *, fold: bool = True) -> bool:
    """Whether ``value`` satisfies one ``{exact,contains,startswith,endswith}`` operator."""
    if value is None:
        return False
    if fold:
        value, operand = value.lower(), operand.lower()
    if op == "exact":
        return value == operand
    if op == "contains":
        return operand in value
    if op == "startswith":
        return value.startswith(operand)
    if op == "endswith":
        return value.endswith(operand)
    raise Invalid(f"unknown filter operator {op!r}; use one of {', '.join(TEXT_OPS)}", 1004)


@dataclass(frozen=True)
class RecordQuery:
    type: str | None = None
    proxied: bool | None = None
    #: operator -> operand, e.g. {"exact": "app.example.test"}.
    name: dict[str, str] = field(default_factory=dict)
    content: dict[str, str] = field(default_factory=dict)
    #: Also "present" and "absent" (operand ignored).
    comment: dict[str, str] = field(default_factory=dict)
    #: "present"/"absent" take a tag name; the others "name:value" (the value is what is compared).
    tag: dict[str, str] = field(default_factory=dict)
    tag_match: str = "all"
    match: str = "all"
    search: str | None = None
    order: str | None = None
    direction: str = "asc"


def _tags(row: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in json.loads(row.tags or "[]"):
        name, _, value = str(tag).partition(":")
        out[name.lower()] = value
    return out


def _tag_condition(op: str, operand: str) -> Callable[[Any], bool]:
    if op in ("present", "absent"):
        wanted = operand.lower()
        return lambda r: (wanted in _tags(r)) == (op == "present")
    name, sep, value = operand.partition(":")
    if not sep:
        raise Invalid(f"tag.{op} must be <tag-name>:<tag-value>", 1004)
    return lambda r: text_matches(_tags(r).get(name.lower()), op, value)


def _field_condition(column: str, op: str, operand: str, *, fold: bool) -> Callable[[Any], bool]:
    if op not in TEXT_OPS:
        raise Invalid(f"unknown filter operator {column}.{op}; use one of {', '.join(TEXT_OPS)}", 1004)
    return lambda r: text_matches(getattr(r, column), op, operand, fold=fold)


def _comment_condition(op: str, operand: str) -> Callable[[Any], bool]:
    if op == "present":
        return lambda r: bool(r.comment)
    if op == "absent":
        return lambda r: not r.comment
    return lambda r: text_matches(r.comment, op, operand)


def _conditions(query: RecordQuery) -> list[Callable[[Any], bool]]:
    checks: list[Callable[[Any], bool]] = []
    if query.type is not None:
        checks.append(lambda r: r.type == query.type)
    if query.proxied is not None:
        checks.append(lambda r: bool(r.proxied) == query.proxied)
    for op, operand in query.name.items():
        checks.append(_field_condition("name", op, operand.rstrip("."), fold=True))
    for op, operand in query.content.items():
        # Exact content is exact (TXT values are case-sensitive); the partial operators fold case.
        checks.append(_field_condition("content", op, operand, fold=op != "exact"))
    for op, operand in query.comment.items():
        checks.append(_comment_condition(op, operand))
    tag_checks = [_tag_condition(op, operand) for op, operand in query.tag.items()]
    if tag_checks:
        combine_tags = all if query.tag_match == "all" else any
        checks.append(lambda r: combine_tags(check(r) for check in tag_checks))
    return checks


def _sort_key(order: str) -> Callable[[Any], Any]:
    if order == "proxied":
        return lambda r: (bool(r.proxied), r.name)
    return lambda r: (getattr(r, order), r.name, r.created_on)


def apply_query(rows: Sequence[Any], query: RecordQuery) -> list[Any]:
    if query.match not in ("any", "all") or query.tag_match not in ("any", "all"):
        raise Invalid("match and tag_match must be any or all", 1004)
    if query.order is not None and query.order not in ORDERS:
        raise Invalid(f"order must be one of {', '.join(ORDERS)}", 1004)
    if query.direction not in ("asc", "desc"):
        raise Invalid("direction must be asc or desc", 1004)
    checks = _conditions(query)
    combine = all if query.match == "all" else any
    selected = [r for r in rows if not checks or combine(check(r) for check in checks)]
    if query.search:
        needle = query.search.lower()
        selected = [
            r for r in selected if any(needle in (v or "").lower() for v in (r.name, r.content, r.comment, r.tags))
        ]
    key = _sort_key(query.order) if query.order else (lambda r: (r.name, r.created_on))
    return sorted(selected, key=key, reverse=query.direction == "desc")
