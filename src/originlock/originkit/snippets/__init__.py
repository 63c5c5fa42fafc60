"""Origin-server configuration snippets for AOP, one module per server, picked from a registry.

Each module has ``render(opts, phase) -> str``. :func:`render_both` prints the accept phase and the
enforce phase one after the other, which is what ``originlock origin config`` shows.
"""

from __future__ import annotations

from collections.abc import Callable

from originlock.originkit.snippets import apache, caddy, envoy, haproxy, nginx, traefik
from originlock.originkit.snippets.bundle import bundle_file_name, normalise_bundle, write_ca_bundle
from originlock.originkit.snippets.options import PHASES, Phase, SnippetOptions

__all__ = [
    "PHASES",
    "SERVERS",
    "Phase",
    "Renderer",
    "SnippetOptions",
    "bundle_file_name",
    "normalise_bundle",
    "render",
    "render_both",
    "write_ca_bundle",
]

Renderer = Callable[[SnippetOptions, Phase], str]

#: Server name (as typed on the command line) -> renderer.
SERVERS: dict[str, Renderer] = {
    "nginx": nginx.render,
    "apache": apache.render,
    "caddy": caddy.render,
    "haproxy": haproxy.render,
    "envoy": envoy.render,
    "traefik": traefik.render,
}


def render(server: str, opts: SnippetOptions, phase: Phase) -> str:
    """Raises ValueError for an unknown server (the message lists the known ones)."""
    try:
        renderer = SERVERS[server]
    except KeyError:
        raise ValueError(f"unknown server {server!r}; choose one of: {', '.join(SERVERS)}") from None
    return renderer(opts, phase)


def render_both(server: str, opts: SnippetOptions) -> str:
    """Both phases with a heading each: deploy the first, watch the logs, then switch to the second."""
    accept = render(server, opts, "accept")
    enforce = render(server, opts, "enforce")
    return (
        "# ---- step 1: accept (client certificates requested and verified, not yet required) ----\n"
        f"{accept}\n"
        "# ---- step 2: enforce (only the edge gets in) ----\n"
        f"{enforce}"
    )
