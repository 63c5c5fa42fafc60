"""BIND zone files: a zone's records out (``export``) and in (``import``), as Cloudflare's DNS does.

Pure text in and out. Export writes one record per line with fully qualified names; proxied records carry
Cloudflare's ``cf_tags=cf-proxied:true`` comment so that importing the file back restores them as they were.
Import understands ``$ORIGIN``, ``$TTL``, ``@``, relative names, a blank owner (the previous one),
comments, quoted strings and parenthesised continuations; SOA records are skipped (the zone's own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from originlock.store.dns_types import RECORD_TYPES, STRUCTURED
from originlock.store.errors import Invalid

__all__ = ["BindRecord", "export_zone", "parse_zone"]

_CLASSES = ("IN", "CH", "HS")
_PROXIED_TAG = re.compile(r"cf_tags=\S*cf-proxied:(true|false)")
DEFAULT_TTL = 3600


@dataclass(frozen=True)
class BindRecord:
    line: int
    name: str
    ttl: int
    type: str
    content: str
    priority: int | None
    proxied: bool | None


def _quote_txt(text: str) -> str:
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def _rdata(row: Any) -> str:
    if row.type == "TXT":
        return _quote_txt(row.content)
    content = row.content
    if row.type in ("CNAME", "MX", "NS", "PTR") and content != ".":
        content += "."
    if row.type == "SRV":
        data = json.loads(row.data)
        target = data["target"] if data["target"] == "." else data["target"] + "."
        return f"{row.priority} {data['weight']} {data['port']} {target}"
    if row.priority is not None and row.type in ("MX", "URI"):
        return f"{row.priority} {content}"
    return str(content)


def export_zone(zone_name: str, rows: Iterable[Any]) -> str:
    lines = [f";; Zone: {zone_name}", f"$ORIGIN {zone_name}.", f"$TTL {DEFAULT_TTL}", ""]
    for row in rows:
        ttl = DEFAULT_TTL if row.ttl == 1 else row.ttl
        line = f"{row.name}.\t{ttl}\tIN\t{row.type}\t{_rdata(row)}"
        if row.proxied:
            line += " ; cf_tags=cf-proxied:true"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _strip_comment(line: str) -> tuple[str, str]:
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif ch == ";" and not quoted:
            return line[:i], line[i + 1 :]
    return line, ""


def _logical_lines(text: str) -> Iterable[tuple[int, str, str]]:
    """(first line number, record text, comment) with parenthesised continuations joined."""
    buffer, comment, start, depth = "", "", 0, 0
    for number, raw in enumerate(text.splitlines(), start=1):
        body, note = _strip_comment(raw)
        if depth == 0:
            buffer, comment, start = body, note, number
        else:
            buffer += " " + body
            comment += note
        depth += body.count("(") - body.count(")")
        if depth < 0:
            raise Invalid(f"line {number}: unbalanced parentheses", 1004)
        if depth == 0 and buffer.strip():
            yield start, buffer.replace("(", " ").replace(")", " ") if "(" in buffer else buffer, comment
    if depth:
        raise Invalid(f"line {start}: unbalanced parentheses", 1004)


def _absolute(name: str, origin: str) -> str:
    if name == "@":
        return origin
    return name[:-1] if name.endswith(".") else f"{name}.{origin}"


def _txt_content(rdata: str) -> str:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', rdata)
    if not parts:
        return rdata.strip()
    return "".join(p.replace('\\"', '"').replace("\\\\", "\\") for p in parts)


def _record(line: int, rtype: str, rest: str, owner: str, ttl: int, origin: str, note: str) -> BindRecord:
    proxied_tag = _PROXIED_TAG.search(note)
    proxied = None if proxied_tag is None else proxied_tag.group(1) == "true"
    if rtype == "TXT":
        return BindRecord(line, owner, ttl, rtype, _txt_content(rest), None, proxied)
    fields = rest.split()
    priority = None
    if rtype in ("MX", "URI", "SRV"):
        if len(fields) < 2 or not fields[0].isdigit():
            raise Invalid(f"line {line}: {rtype} needs a priority first", 1004)
        priority, fields = int(fields[0]), fields[1:]
        rest = rest.split(None, 1)[1]  # the rdata after the priority, quotes intact (URI's target)
    if rtype in ("CNAME", "MX", "NS", "PTR") and fields:
        fields[-1] = _absolute(fields[-1], origin) if fields[-1] != "." else "."
    if rtype == "SRV" and len(fields) == 3 and fields[2] != ".":
        fields[2] = _absolute(fields[2], origin)
    content = rest.strip() if rtype in STRUCTURED and rtype != "SRV" else " ".join(fields)
    return BindRecord(line, owner, ttl, rtype, content, priority, proxied)


def parse_zone(text: str, zone_name: str) -> list[BindRecord]:
    """Every record of a zone file; raises :class:`Invalid` naming the line of the first it cannot read."""
    origin, default_ttl, owner = zone_name, 1, zone_name
    records: list[BindRecord] = []
    for number, body, note in _logical_lines(text):
        if body.startswith("$"):
            directive, _, value = body.strip().partition(" ")
            if directive.upper() == "$ORIGIN":
                origin = value.strip().rstrip(".").lower()
            elif directive.upper() == "$TTL" and value.strip().isdigit():
                default_ttl = int(value.strip())
            continue
        tokens = body.split()
        consumed = 0
        if body[:1] not in (" ", "\t"):  # a blank owner repeats the previous one
            owner = _absolute(tokens[0].lower(), origin)
            consumed = 1
            if owner != zone_name and not owner.endswith("." + zone_name):
                raise Invalid(f"line {number}: {owner} is not in the zone {zone_name}", 1004)
        ttl = default_ttl
        while consumed < len(tokens) and (tokens[consumed].isdigit() or tokens[consumed].upper() in _CLASSES):
            if tokens[consumed].isdigit():
                ttl = int(tokens[consumed])
            consumed += 1
        if consumed >= len(tokens):
            raise Invalid(f"line {number}: no record type", 1004)
        rtype = tokens[consumed].upper()
        if rtype == "SOA":
            continue
        if rtype not in RECORD_TYPES:
            raise Invalid(f"line {number}: record type {tokens[consumed]!r} is not supported", 1004)
        # The rdata as written (quotes intact): everything after the type word.
        pieces = body.split(None, consumed + 1)
        rest = pieces[consumed + 1] if len(pieces) > consumed + 1 else ""
        records.append(_record(number, rtype, rest, owner, ttl, origin, note))
    return records
