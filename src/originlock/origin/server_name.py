"""Checking snapshot values before they reach ``socket`` and ``ssl`` calls (pure: no I/O).

The API validates Origin Rules and DNS records where they enter, but the edge must not trust that every
snapshot went through it (an older store, a hand-edited row, a future route that forgets): a value the
socket layer cannot take must become an error page and an access-log line, never an exception that ends
the request's task without an answer.

Two reasons make checking first necessary rather than catching afterwards:

- ``ssl`` encodes ``server_hostname`` inside ``wrap_bio``, which the event loop calls *after* it has taken
  over the connected socket. With uvloop a ``TypeError`` (NUL byte) or ``UnicodeError`` (a label longer
  than 63 characters) raised there makes the loop close the file descriptor while the Python socket
  object still holds its number; closing that object again may close an unrelated connection that reused
  the number meanwhile.
- ``sock_connect`` raises ``OverflowError`` (not ``OSError``) for a port outside 0-65535.

A server name is accepted when ssl would encode it (IDNA, no NUL) and the result is a DNS name of at
most 253 characters in labels of 1-63 letters, digits, hyphens or underscores (RFC 1035 §2.3.4; the
underscore appears in real service names), or an IP literal (which ssl checks but does not send, RFC 6066
§3).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Final

__all__ = ["check_port", "server_name_error"]

#: RFC 1035 §2.3.4: 255 octets on the wire, i.e. 253 characters in dotted form without the root dot.
MAX_NAME: Final = 253
_LABEL: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")


@functools.lru_cache(maxsize=4096)  # checked at every new origin connection; a handful of names in practice
def server_name_error(name: str) -> str | None:
    """Why ``name`` cannot be sent as the TLS server name (SNI) and checked against a certificate, or
    None when it can."""
    if not name:
        return "it is empty"
    if "\x00" in name:
        return "it contains a NUL byte"
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    try:
        encoded = name.encode("idna").decode("ascii")  # what ssl.SSLContext._encode_hostname does
    except UnicodeError:
        return "it is not a valid hostname (IDNA: a label is empty, longer than 63 characters or not encodable)"
    host = encoded[:-1] if encoded.endswith(".") else encoded
    if len(host) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    for label in host.split("."):
        if not _LABEL.match(label):
            return f"label {label[:70]!r} is not 1-63 letters, digits, hyphens or underscores"
    return None


def check_port(port: int) -> bool:
    """Whether ``port`` can be connected to (1-65535)."""
    return 0 < port < 65536
