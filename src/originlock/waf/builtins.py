"""Implementations of the Rules-language functions (signatures are in ``functions.py``).

Each takes already-evaluated arguments and returns a value or ``None`` (missing). Missing input
gives missing output, except ``concat``, where a missing argument counts as empty (spec §1.10).
All are pure: ``is_timed_hmac_valid_v0`` gets "now" from an argument, never from a clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any, Final

__all__ = ["IMPLEMENTATIONS", "url_decode"]

_MAX_URL_DECODE_ROUNDS: Final = 16
"""Bound on ``url_decode(x, "r")``: each round shortens the input, so this only caps work."""

_HMAC_MESSAGE: Final = re.compile(rb"(.+)(.*)(\d{10})-(.{43,})", re.DOTALL)


def _lower(s: bytes | None) -> bytes | None:
    return None if s is None else s.lower()  # bytes.lower() is ASCII-only, as Cloudflare's


def _upper(s: bytes | None) -> bytes | None:
    return None if s is None else s.upper()


def _len(s: bytes | tuple[Any, ...] | None) -> int | None:
    return None if s is None else len(s)


def _starts_with(s: bytes | None, prefix: bytes | None) -> bool | None:
    return None if s is None or prefix is None else s.startswith(prefix)


def _ends_with(s: bytes | None, suffix: bytes | None) -> bool | None:
    return None if s is None or suffix is None else s.endswith(suffix)


def _concat(*parts: Any) -> Any:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if isinstance(present[0], bytes):
        return b"".join(present)
    return tuple(item for part in present for item in part)


def _percent(data: bytes, unicode: bool) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c == 0x2B:  # '+'
            out.append(0x20)
            i += 1
            continue
        if c == 0x25 and unicode and data[i + 1 : i + 2] in (b"u", b"U"):
            digits = data[i + 2 : i + 6]
            try:
                out += chr(int(digits, 16)).encode("utf-8", "surrogatepass")
                i += 6
                continue
            except ValueError:
                pass
        if c == 0x25 and i + 3 <= n:
            try:
                out.append(int(data[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(c)
        i += 1
    return bytes(out)


def url_decode(s: bytes | None, options: bytes = b"") -> bytes | None:
    """``%XX`` and ``+`` decoding; ``r`` repeats until stable, ``u`` decodes ``%uXXXX`` to UTF-8."""
    if s is None:
        return None
    unicode = b"u" in options
    out = _percent(s, unicode)
    if b"r" in options:
        for _ in range(_MAX_URL_DECODE_ROUNDS):
            again = _percent(out, unicode)
            if again == out:
                break
            out = again
    return out


def _decode_base64(s: bytes | None) -> bytes | None:
    if s is None:
        return None
    try:
        return base64.b64decode(s + b"=" * (-len(s) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _encode_base64(s: bytes | None, flags: bytes = b"") -> bytes | None:
    if s is None:
        return None
    return base64.urlsafe_b64encode(s) if b"u" in flags else base64.b64encode(s)


def _sha256(s: bytes | None) -> bytes | None:
    return None if s is None else hashlib.sha256(s).digest()


def _lookup_json(s: bytes | None, keys: tuple[bytes | int, ...]) -> Any:
    if s is None:
        return None
    try:
        value: Any = json.loads(s)
    except (ValueError, RecursionError):
        return None
    for key in keys:
        if isinstance(key, bytes) and isinstance(value, dict):
            value = value.get(key.decode("utf-8", "replace"))
        elif isinstance(key, int) and isinstance(value, list) and 0 <= key < len(value):
            value = value[key]
        else:
            return None
    return value


def _lookup_json_string(s: bytes | None, *keys: bytes | int) -> bytes | None:
    value = _lookup_json(s, keys)
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else None


def _lookup_json_integer(s: bytes | None, *keys: bytes | int) -> int | None:
    value = _lookup_json(s, keys)
    # Plain integers only: bool is an int in Python and 42.0 is a float; both are refused.
    if isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 63):
        return value
    return None


def _remove_bytes(s: bytes | None, remove: bytes) -> bytes | None:
    return None if s is None else s.translate(None, remove)


def _substring(s: bytes | None, start: int, end: int | None = None) -> bytes | None:
    return None if s is None else s[start:end]


def _mask(ip: tuple[int, int], v4_bits: int, v6_bits: int) -> tuple[int, int]:
    family, value = ip
    width, bits = (32, v4_bits) if family == 4 else (128, v6_bits)
    keep = ((1 << bits) - 1) << (width - bits)
    return (family, value & keep)


def _cidr(ip: tuple[int, int] | None, v4_bits: int, v6_bits: int) -> tuple[int, int] | None:
    return None if ip is None else _mask(ip, v4_bits, v6_bits)


def _cidr6(ip: tuple[int, int] | None, v6_bits: int) -> tuple[int, int] | None:
    # IPv4 addresses come back unchanged (Cloudflare docs for cidr6).
    return None if ip is None else _mask(ip, 32, v6_bits)


def _join(items: tuple[bytes, ...] | None, sep: bytes) -> bytes | None:
    return None if items is None else sep.join(items)


def _is_timed_hmac_valid_v0(
    key: bytes,
    message_mac: bytes | None,
    ttl: int,
    now: int | None,
    separator_length: int = 0,
    flags: bytes = b"",
) -> bool | None:
    """Cloudflare's token check: ``message`` + separator + 10-digit timestamp + ``-`` + base64 MAC."""
    if message_mac is None or now is None:
        return None
    found = _HMAC_MESSAGE.fullmatch(message_mac)
    if found is None:
        return False
    head, timestamp, mac = found.group(1) + found.group(2), found.group(3), found.group(4)
    if separator_length and len(head) <= separator_length:
        return False
    issued = int(timestamp)
    if not issued <= now <= issued + ttl:
        return False
    digest = hmac.new(key, head + timestamp, hashlib.sha256).digest()
    expected = {base64.b64encode(digest), base64.b64encode(digest).rstrip(b"=")}
    expected |= {base64.urlsafe_b64encode(digest), base64.urlsafe_b64encode(digest).rstrip(b"=")}
    return any(hmac.compare_digest(mac, e) for e in expected)


IMPLEMENTATIONS: Final[dict[str, Callable[..., Any]]] = {
    "lower": _lower,
    "upper": _upper,
    "len": _len,
    "starts_with": _starts_with,
    "ends_with": _ends_with,
    "concat": _concat,
    "url_decode": url_decode,
    "decode_base64": _decode_base64,
    "encode_base64": _encode_base64,
    "sha256": _sha256,
    "lookup_json_string": _lookup_json_string,
    "lookup_json_integer": _lookup_json_integer,
    "remove_bytes": _remove_bytes,
    "substring": _substring,
    "cidr": _cidr,
    "cidr6": _cidr6,
    "join": _join,
    "is_timed_hmac_valid_v0": _is_timed_hmac_valid_v0,
}
