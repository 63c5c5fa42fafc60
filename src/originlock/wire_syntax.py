"""Syntax of the values the API accepts that the edge later puts on the wire (issue 10, item 3).

A value that reaches an origin's request head or TLS handshake is checked where it enters the control
plane, so a CR/LF smuggled into an Origin Rule's ``host_header`` is a 400 naming the field, not a second
request on a shared origin connection. The edge's serialiser refuses CR, LF and NUL again as a second line
(docs/security.md). Pure functions; each returns the value as it will be used or raises ``ValueError``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

__all__ = [
    "MAX_HOSTNAME",
    "MAX_LABEL",
    "check_field_value",
    "check_host",
    "check_hostname",
]

#: RFC 1035 §2.3.4: 63 octets per label, 255 per name on the wire (253 in text form).
MAX_LABEL: Final = 63
MAX_HOSTNAME: Final = 253

# Letters, digits, hyphen (not first or last) and underscore (common in origin names); case-insensitive.
_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
# RFC 9110 §5.5 field-value: visible ASCII, with spaces and tabs only between visible characters.
_FIELD_VALUE: Final = re.compile(r"[\x21-\x7e]([\x20\x21-\x7e\t]*[\x21-\x7e])?\Z")
_PORT: Final = re.compile(r"[0-9]{1,5}\Z")


def _describe(value: str) -> str:
    bad = next((c for c in value if not 0x21 <= ord(c) <= 0x7E and c not in " \t"), None)
    if bad is not None:
        return f"contains the control or non-ASCII character U+{ord(bad):04X}"
    return "has leading or trailing whitespace" if value != value.strip() else "is empty"


def check_field_value(value: str, what: str, *, max_length: int = 8192) -> str:
    """An HTTP header field value (RFC 9110 §5.5): no CR, LF, NUL or other controls, no outer whitespace."""
    if len(value) > max_length:
        raise ValueError(f"{what} is longer than {max_length} characters")
    if not _FIELD_VALUE.match(value):
        raise ValueError(f"{what} is not a valid HTTP field value: it {_describe(value)}")
    return value


def check_hostname(value: str, what: str) -> str:
    """A DNS hostname: labels of letters, digits, ``-`` and ``_``, each 1-63 characters, 253 in all.

    A trailing dot (the root) is accepted and removed; the result is lower-case.
    """
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > MAX_HOSTNAME:
        raise ValueError(f"{what} must be a hostname of 1 to {MAX_HOSTNAME} characters")
    for label in name.split("."):
        if not _LABEL.match(label):
            if len(label) > MAX_LABEL:
                raise ValueError(f"{what}: the label {label[:20]!r}... is longer than {MAX_LABEL} characters")
            if not label:
                raise ValueError(f"{what} {value[:64]!r} has an empty label")
            raise ValueError(
                f"{what} {value[:64]!r} is not a valid hostname: use letters, digits, '-' and '_' "
                f"(it {_describe(label) if _describe(label) != 'is empty' else 'has a bad character'})"
            )
    return name.lower()


def _split_port(value: str, what: str) -> tuple[str, str]:
    if value.startswith("["):
        end = value.find("]")
        host, rest = (value[: end + 1], value[end + 1 :]) if end != -1 else (value, "")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{what} {value[:64]!r} is not a valid host")
        return host, rest[1:]
    if value.count(":") == 1:
        host, _, number = value.partition(":")
        return host, number
    return value, ""


def check_host(value: str, what: str, *, port: bool = False) -> str:
    """A hostname or an IP address, and with ``port`` the form of RFC 9110 §7.2's Host field:
    ``uri-host [":" port]``, an IPv6 address then in brackets. Returns the normalised form."""
    host, number = _split_port(value, what) if port else (value, "")
    if port and (value.endswith(":") or number) and not (_PORT.match(number) and 1 <= int(number) <= 65535):
        raise ValueError(f"{what} {value[:64]!r} has an invalid port (1-65535)")
    suffix = f":{number}" if number else ""
    if port and host.startswith("[") and host.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1])}]{suffix}"
        except ValueError:
            raise ValueError(f"{what} {value[:64]!r} is not a valid IPv6 address") from None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return check_hostname(host, what) + suffix
    if port and address.version == 6:
        return f"[{address}]{suffix}"
    return str(address) + suffix
