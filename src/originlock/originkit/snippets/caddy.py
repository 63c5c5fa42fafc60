"""Caddy (Caddyfile): ``client_auth`` mode ``verify_if_given`` (accept) then ``require_and_verify``.

``trusted_ca_cert_file`` works from Caddy 2.6 (Debian 12) on; 2.8 added ``trust_pool file`` and keeps the old one.
"""

from __future__ import annotations

from originlock.originkit.snippets.options import Phase, SnippetOptions

__all__ = ["render"]


def render(opts: SnippetOptions, phase: Phase) -> str:
    mode = "verify_if_given" if phase == "accept" else "require_and_verify"
    sites = ", ".join(f"{name}:{opts.listen_port}" for name in opts.server_names)
    if opts.app_url:
        content = (
            f"\treverse_proxy {opts.app_url} {{\n"
            "\t\t# Lets the app see which certificate came in; Caddy already verified it.\n"
            "\t\theader_up X-Client-Cert-Fingerprint {tls_client_fingerprint}\n"
            "\t}\n"
        )
    else:
        content = "\t# ... your existing site directives ...\n"
    return (
        f"# originlock AOP for {opts.primary_name} - {phase} phase\n"
        f"{sites} {{\n"
        f"\ttls {opts.server_cert_path} {opts.server_key_path} {{\n"
        "\t\tclient_auth {\n"
        f"\t\t\tmode {mode}\n"
        "\t\t\t# CA(s) whose certificates the edge presents; only these may connect.\n"
        f"\t\t\ttrusted_ca_cert_file {opts.ca_bundle_path}\n"
        "\t\t}\n"
        "\t}\n"
        f"{content}"
        "}\n"
    )
