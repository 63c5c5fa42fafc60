"""Traefik (dynamic configuration, YAML): ``clientAuthType`` ``VerifyClientCertIfGiven`` then
``RequireAndVerifyClientCert``.

The router must sit on an entry point with TLS (``websecure`` by convention, declared in the static
configuration). YAML is produced by hand because it is a fixed shape; strings are JSON-quoted, which
is valid YAML, so names and paths with special characters stay safe.
"""

from __future__ import annotations

import json
import re

from originlock.originkit.snippets.options import Phase, SnippetOptions

__all__ = ["ENTRY_POINT", "render"]

#: Traefik's conventional name for the HTTPS entry point.
ENTRY_POINT = "websecure"


def _q(value: str) -> str:
    return json.dumps(value)


def _rule(name: str) -> str:
    if name.startswith("*."):
        # Traefik v3: Host() takes no wildcard; one label under the zone, as a regular expression.
        return f"HostRegexp(`^[^.]+\\.{re.escape(name[2:])}$`)"
    return f"Host(`{name}`)"


def render(opts: SnippetOptions, phase: Phase) -> str:
    auth = "VerifyClientCertIfGiven" if phase == "accept" else "RequireAndVerifyClientCert"
    app = opts.app_url or "http://127.0.0.1:8080"
    rule = " || ".join(_rule(name) for name in opts.server_names)
    return (
        f"# originlock AOP for {opts.primary_name} - {phase} phase (Traefik dynamic configuration)\n"
        f"# the {ENTRY_POINT} entry point must listen on :{opts.listen_port} with TLS\n"
        "tls:\n"
        "  certificates:\n"
        f"    - certFile: {_q(opts.server_cert_path)}\n"
        f"      keyFile: {_q(opts.server_key_path)}\n"
        "  options:\n"
        "    originlock-aop:\n"
        "      clientAuth:\n"
        "        # CA(s) whose certificates the edge presents; only these may connect.\n"
        f"        caFiles: [{_q(opts.ca_bundle_path)}]\n"
        f"        clientAuthType: {auth}\n"
        "http:\n"
        "  routers:\n"
        "    originlock-origin:\n"
        f"      rule: {_q(rule)}\n"
        f"      entryPoints: [{_q(ENTRY_POINT)}]\n"
        "      service: originlock-app\n"
        "      tls:\n"
        "        options: originlock-aop\n"
        "  services:\n"
        "    originlock-app:\n"
        "      loadBalancer:\n"
        "        servers:\n"
        f"          - url: {_q(app)}\n"
    )
