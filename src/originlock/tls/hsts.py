"""The response header fields of the zone setting ``security_header`` (HSTS), computed once per snapshot.

Cloudflare's ``security_header`` holds ``strict_transport_security``: ``enabled``, ``max_age`` (seconds),
``include_subdomains``, ``preload`` and ``nosniff``. Enabled, every HTTPS response of the zone carries
``Strict-Transport-Security: max-age=N[; includeSubDomains][; preload]`` (RFC 6797 §6.1; ``max-age=0`` is
kept: it is how a site tells browsers to forget the policy). ``nosniff`` adds
``X-Content-Type-Options: nosniff``; it is its own switch in the API, so it applies whether or not HSTS is
enabled. Only HTTPS responses get these fields: a browser ignores HSTS received over plain HTTP (RFC 6797
§8.1), and the edge never sends it there.

The value is checked here again, whatever the store holds (the API validates it on write): a malformed
setting gives no field rather than a header built from unchecked data. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["MAX_AGE_LIMIT", "saved_fields", "security_header_fields", "with_security_fields"]

#: The API's upper bound for max_age (two years, as store/setting_catalog.py accepts).
MAX_AGE_LIMIT: Final = 2 * 31536000

STS: Final = b"Strict-Transport-Security"
NOSNIFF: Final = (b"X-Content-Type-Options", b"nosniff")
#: What :func:`security_header_fields` can produce, and so all that :func:`saved_fields` lets through.
_STS_VALUE: Final = re.compile(rb"max-age=[0-9]{1,9}(; includeSubDomains)?(; preload)?")


def _max_age(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    seconds = int(value)
    return seconds if 0 <= seconds <= MAX_AGE_LIMIT else None


def security_header_fields(setting: object) -> tuple[tuple[bytes, bytes], ...]:
    """The (name, value) fields to add to the zone's HTTPS responses for a stored ``security_header`` value;
    empty when nothing is enabled or the value is malformed."""
    if not isinstance(setting, Mapping):
        return ()
    sts = setting.get("strict_transport_security")
    if not isinstance(sts, Mapping):
        return ()
    flags = {name: sts.get(name, False) for name in ("enabled", "include_subdomains", "preload", "nosniff")}
    if not all(isinstance(flag, bool) for flag in flags.values()):
        return ()
    fields: list[tuple[bytes, bytes]] = []
    if flags["enabled"]:
        max_age = _max_age(sts.get("max_age", 0))
        if max_age is None:
            return ()
        value = f"max-age={max_age}"
        if flags["include_subdomains"]:
            value += "; includeSubDomains"
        if flags["preload"]:
            value += "; preload"
        fields.append((STS, value.encode("ascii")))
    if flags["nosniff"]:
        fields.append(NOSNIFF)
    return tuple(fields)


def saved_fields(saved: object) -> tuple[tuple[bytes, bytes], ...]:
    """Fields read back from a saved copy (the last-known-good file: ``[[name, value], ...]``): only the
    ones :func:`security_header_fields` makes, so nothing else read from disk reaches a response.

    Raises:
        ValueError: anything else in ``saved``.
    """
    if not isinstance(saved, list):
        raise ValueError("security header fields: not a list")
    fields: list[tuple[bytes, bytes]] = []
    for item in saved:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(part, str) for part in item)):
            raise ValueError("security header fields: not [name, value] pairs")
        field = (item[0].encode("ascii", "replace"), item[1].encode("ascii", "replace"))
        if field != NOSNIFF and not (field[0] == STS and _STS_VALUE.fullmatch(field[1])):
            raise ValueError(f"security header fields: unexpected field {item[0][:40]!r}")
        fields.append(field)
    return tuple(fields)


def with_security_fields(
    headers: list[tuple[bytes, bytes]], fields: tuple[tuple[bytes, bytes], ...]
) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``fields`` added and the fields of the same names it had removed: the zone's policy
    replaces an origin's own (one ``Strict-Transport-Security``, the one the zone configured)."""
    names = {name.lower() for name, _ in fields}
    return [field for field in headers if field[0].lower() not in names] + list(fields)
