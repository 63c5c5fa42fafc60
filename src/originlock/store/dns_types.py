"""Every DNS record type Cloudflare accepts: what its content and ``data`` must look like.

Pure: a record's type, content, ``data`` and ``priority`` in, the normalised triple out (or :class:`Invalid`).
Structured types (SRV, CAA, ...) take either ``data`` (what Terraform and the SDK send) or the presentation
``content`` (what a BIND file holds); each is derived from the other, so a record reads back the same
whichever way it was written. Only A, AAAA and CNAME can be proxied: they are the ones the edge routes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from originlock.store.errors import Invalid

__all__ = ["PROXIABLE", "RECORD_TYPES", "Normalised", "normalise", "record_name"]

PROXIABLE = ("A", "AAAA", "CNAME")
#: Cloudflare's limit on a TXT record's content (many 255-byte strings).
TXT_MAX = 2048
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
# Record names and name contents may carry underscores (_dmarc, _sip._tcp) and one leading "*." label.
_DNS_NAME = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")


def _host(value: Any, what: str) -> str:
    text = str(value).strip().rstrip(".").lower()
    if len(text) > 253 or not _DNS_NAME.match(text):
        raise Invalid(f"{what} {value!r} is not a valid hostname", 1004)
    return text


def _host_or_root(value: Any, what: str) -> str:
    return "." if str(value).strip() == "." else _host(value, what)


def _int(low: int, high: int) -> Callable[[Any, str], int]:
    def check(value: Any, what: str) -> int:
        try:
            number = int(str(value), 10) if not isinstance(value, (int, float)) else int(value)
        except ValueError:
            raise Invalid(f"{what} must be an integer between {low} and {high}", 1004) from None
        if (isinstance(value, float) and value != number) or not low <= number <= high:
            raise Invalid(f"{what} must be an integer between {low} and {high}", 1004)
        return number

    return check


def _float(low: float, high: float) -> Callable[[Any, str], float]:
    def check(value: Any, what: str) -> float:
        try:
            number = float(str(value).removesuffix("m"))
        except ValueError:
            raise Invalid(f"{what} must be a number between {low:g} and {high:g}", 1004) from None
        if not low <= number <= high:
            raise Invalid(f"{what} must be a number between {low:g} and {high:g}", 1004)
        return number

    return check


def _hex(value: Any, what: str) -> str:
    text = str(value).strip().replace(" ", "")
    if not text or not re.fullmatch(r"[0-9a-fA-F]+", text) or len(text) % 2:
        raise Invalid(f"{what} must be hexadecimal", 1004)
    return text.upper()


def _b64(value: Any, what: str) -> str:
    text = str(value).strip().replace(" ", "")
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{what} must be base64", 1004) from None
    if not text:
        raise Invalid(f"{what} must be base64", 1004)
    return text


def _text(limit: int) -> Callable[[Any, str], str]:
    def check(value: Any, what: str) -> str:
        text = str(value)
        if len(text) > limit or any(ord(c) < 32 and c != "\t" for c in text):
            raise Invalid(f"{what} must be at most {limit} printable characters", 1004)
        return text

    return check


def _choice(*allowed: str) -> Callable[[Any, str], str]:
    def check(value: Any, what: str) -> str:
        text = str(value).strip()
        if text not in allowed:
            raise Invalid(f"{what} must be one of {', '.join(allowed)}", 1004)
        return text

    return check


@dataclass(frozen=True)
class Part:
    """One field of a structured record, in presentation order."""

    name: str
    check: Callable[[Any, str], Any]
    #: How the field is written in ``content``: plain, "quoted", or "meters" (LOC's "10.00m").
    style: str = "plain"


_U8, _U16, _U32 = _int(0, 255), _int(0, 65535), _int(0, 4294967295)
_SVC = (Part("priority", _U16), Part("target", _host_or_root), Part("value", _text(4096), "rest"))
_TLSA = (Part("usage", _U8), Part("selector", _U8), Part("matching_type", _U8), Part("certificate", _hex))
#: Structured types: the parts written in ``content`` (SRV's and URI's priority travels beside it).
STRUCTURED: dict[str, tuple[Part, ...]] = {
    "CAA": (
        Part("flags", _U8),
        Part("tag", _choice("issue", "issuewild", "issuemail", "iodef")),
        Part("value", _text(1024), "quoted"),
    ),
    "CERT": (Part("type", _U16), Part("key_tag", _U16), Part("algorithm", _U8), Part("certificate", _b64)),
    "DNSKEY": (Part("flags", _U16), Part("protocol", _U8), Part("algorithm", _U8), Part("public_key", _b64)),
    "DS": (Part("key_tag", _U16), Part("algorithm", _U8), Part("digest_type", _U8), Part("digest", _hex)),
    "HTTPS": _SVC,
    "SVCB": _SVC,
    "LOC": (
        Part("lat_degrees", _int(0, 90)),
        Part("lat_minutes", _int(0, 59)),
        Part("lat_seconds", _float(0, 59.999)),
        Part("lat_direction", _choice("N", "S")),
        Part("long_degrees", _int(0, 180)),
        Part("long_minutes", _int(0, 59)),
        Part("long_seconds", _float(0, 59.999)),
        Part("long_direction", _choice("E", "W")),
        Part("altitude", _float(-100000, 42849672.95), "meters"),
        Part("size", _float(0, 90000000), "meters"),
        Part("precision_horz", _float(0, 90000000), "meters"),
        Part("precision_vert", _float(0, 90000000), "meters"),
    ),
    "NAPTR": (
        Part("order", _U16),
        Part("preference", _U16),
        Part("flags", _text(255), "quoted"),
        Part("service", _text(255), "quoted"),
        Part("regex", _text(255), "quoted"),
        Part("replacement", _host_or_root),
    ),
    "SMIMEA": _TLSA,
    "TLSA": _TLSA,
    "SSHFP": (Part("algorithm", _U8), Part("type", _U8), Part("fingerprint", _hex)),
    "SRV": (Part("weight", _U16), Part("port", _U16), Part("target", _host_or_root)),
    "URI": (Part("weight", _U16), Part("target", _text(2048), "quoted")),
}
#: Types whose ``priority`` is a top-level field (SRV's comes from data.priority).
WITH_PRIORITY = ("MX", "URI", "SRV")
SIMPLE = ("A", "AAAA", "CNAME", "MX", "NS", "OPENPGPKEY", "PTR", "TXT")
RECORD_TYPES = tuple(sorted((*SIMPLE, *STRUCTURED)))


@dataclass(frozen=True)
class Normalised:
    content: str
    data: dict[str, Any] | None
    priority: int | None


def record_name(name: str, zone_name: str) -> str:
    """A record name as Cloudflare stores it: fully qualified, lower case; ``@`` is the apex."""
    value = name.strip().rstrip(".").lower()
    if value in ("@", ""):
        return zone_name
    if value != zone_name and not value.endswith("." + zone_name):
        value = f"{value}.{zone_name}"
    if len(value) > 253 or not _DNS_NAME.match(value):
        raise Invalid(f"DNS name {name!r} is invalid", 9000)
    return value


def _format(part: Part, value: Any) -> str:
    if part.style == "quoted":
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if part.style == "meters":
        return f"{value:.2f}m"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _from_data(rtype: str, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in STRUCTURED[rtype]:
        if part.name not in data or data[part.name] is None:
            raise Invalid(f"data.{part.name} is required for a {rtype} record", 1004)
        out[part.name] = part.check(data[part.name], f"data.{part.name}")
    return out


def _from_content(rtype: str, content: str) -> dict[str, Any]:
    parts = STRUCTURED[rtype]
    try:
        if parts[-1].style == "rest":
            tokens = content.split(None, len(parts) - 1)
            tokens += [""] * (len(parts) - len(tokens))
        else:
            tokens = shlex.split(content)
    except ValueError:
        raise Invalid(f"content for {rtype} record is invalid: unbalanced quotes", 1004) from None
    if len(tokens) != len(parts):
        names = " ".join(p.name for p in parts)
        raise Invalid(f"content for {rtype} record must be: {names}", 1004)
    return {p.name: p.check(t, f"content ({p.name})") for p, t in zip(parts, tokens, strict=True)}


def _simple(rtype: str, content: str) -> str:
    if rtype in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(content)
        except ValueError:
            code = 9005 if rtype == "A" else 9006
            raise Invalid(f"content for {rtype} record is invalid: {content!r} is not an IP address", code) from None
        if (rtype == "A") != (address.version == 4):
            code = 9005 if rtype == "A" else 9006
            raise Invalid(f"content for {rtype} record must be an IPv{4 if rtype == 'A' else 6} address", code)
        return str(address)
    if rtype == "CNAME":
        try:
            return _host(content, "content")
        except Invalid as exc:
            raise Invalid(f"content for CNAME record is invalid: {exc.message}", 9007) from None
    if rtype == "MX" and content.strip() == ".":
        return "."  # RFC 7505 null MX
    if rtype in ("MX", "NS", "PTR"):
        return _host(content, f"content for {rtype} record")
    if rtype == "OPENPGPKEY":
        return _b64(content, "content for OPENPGPKEY record")
    if not content:
        raise Invalid("content for TXT record must not be empty", 1004)
    return str(_text(TXT_MAX)(content, "content for TXT record"))


def _priority(rtype: str, value: Any, what: str = "priority") -> int:
    if value is None:
        raise Invalid(f"{what} is required for a {rtype} record", 1004)
    return _U16(value, what)


def normalise(rtype: str, content: str | None, data: dict[str, Any] | None, priority: int | None) -> Normalised:
    """Validate one record's payload; ``rtype`` is already upper case."""
    if rtype not in RECORD_TYPES:
        raise Invalid(f"type {rtype!r} is not a DNS record type; use one of {', '.join(RECORD_TYPES)}", 1004)
    if rtype in STRUCTURED:
        if data is not None:
            fields = _from_data(rtype, data)
        elif content is not None and content.strip():
            fields = _from_content(rtype, content.strip())
        else:
            raise Invalid(f"data is required for a {rtype} record", 1004)
        text = " ".join(_format(p, fields[p.name]) for p in STRUCTURED[rtype])
        if rtype == "SRV":
            # Cloudflare keeps SRV's priority in data and echoes it as the record's priority.
            prio = _priority(rtype, (data or {}).get("priority", priority), "data.priority")
            return Normalised(text, {"priority": prio, **fields}, prio)
        return Normalised(text, fields, _priority(rtype, priority) if rtype == "URI" else None)
    if content is None:
        raise Invalid(f"content is required for a {rtype} record", 1004)
    mx_priority = _priority(rtype, priority) if rtype == "MX" else None
    return Normalised(_simple(rtype, content if rtype == "TXT" else content.strip()), None, mx_priority)
