"""Parse what the operator typed as the thing to probe: ``https://host:port/path``, ``host:port`` or ``host``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Target", "parse_target"]

DEFAULT_HTTPS_PORT = 443
DEFAULT_HTTP_PORT = 80


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_target(text: str, *, allow_http: bool = False) -> Target:
    """Parse a URL or ``host[:port]``; a bare host means HTTPS on 443.

    Raises:
        ValueError: empty, unparsable, a port out of range, or ``http://`` when not allowed (an origin that
            only speaks plain HTTP cannot check client certificates at all).
    """
    text = text.strip()
    if not text:
        raise ValueError("no origin given; pass a URL such as https://203.0.113.10:443/")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError(f"unsupported scheme {scheme!r}; use https://HOST[:PORT]")
    if scheme == "http" and not allow_http:
        raise ValueError(
            "the origin URL is plain http://: client certificates need TLS; check the origin's HTTPS port instead"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid port in {text!r}") from exc
    if not parts.hostname:
        raise ValueError(f"no host in {text!r}")
    default = DEFAULT_HTTPS_PORT if scheme == "https" else DEFAULT_HTTP_PORT
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=parts.hostname, port=port or default, path=path)
