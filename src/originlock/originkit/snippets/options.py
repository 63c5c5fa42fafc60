"""What every origin-server snippet is rendered from: the same frozen options for all six servers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["PHASES", "Phase", "SnippetOptions"]

#: Cloudflare's two documented steps (spec §11): first *accept* (ask for a certificate, verify it when
#: sent, let requests without one through and log them), then *enforce* (no valid certificate, no entry).
Phase = Literal["accept", "enforce"]
PHASES: tuple[Phase, ...] = ("accept", "enforce")


@dataclass(frozen=True)
class SnippetOptions:
    """Paths and names a snippet needs. Paths are written verbatim into the configuration."""

    #: Names the origin answers to (``server_name`` / ``ServerName`` / router rule); first is primary.
    server_names: tuple[str, ...]
    #: The origin's own server certificate (chain) and key, as the operator already has them.
    server_cert_path: str
    server_key_path: str
    #: The CA bundle the origin trusts for client certificates (what ``write_ca_bundle`` wrote).
    ca_bundle_path: str
    listen_port: int = 443
    #: Where admitted requests go, for servers that only proxy (HAProxy, Envoy, Traefik) and optionally
    #: for nginx/Apache/Caddy; ``None`` means "your existing content" for the web servers.
    app_url: str | None = None
    #: Maximum chain depth accepted below the CA: Cloudflare's CA allows intermediates (pathlen 2).
    verify_depth: int = 2

    def __post_init__(self) -> None:
        if not self.server_names:
            raise ValueError("at least one server name is required")
        if not 0 < self.listen_port < 65536:
            raise ValueError(f"listen_port {self.listen_port} is out of range")
        for name in self.server_names:
            if not name or any(c.isspace() or c in "{};\"'`" for c in name):
                raise ValueError(f"server name {name!r} contains characters not allowed in a hostname")

    @property
    def primary_name(self) -> str:
        return self.server_names[0]

    def app_host_port(self) -> tuple[str, int]:
        """``app_url`` split for servers that take host and port separately (Envoy, HAProxy)."""
        if self.app_url is None:
            raise ValueError("this server needs --app URL: the address admitted requests are sent to")
        parts = urlsplit(self.app_url if "://" in self.app_url else f"http://{self.app_url}")
        if not parts.hostname:
            raise ValueError(f"no host in app URL {self.app_url!r}")
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
