"""Apache httpd (mod_ssl): ``SSLVerifyClient optional`` (accept) then ``require`` (enforce).

``require`` makes Apache refuse at the TLS layer, which the edge reports as 525 (spec §7).
"""

from __future__ import annotations

from originlock.originkit.snippets.options import Phase, SnippetOptions

__all__ = ["render"]


def render(opts: SnippetOptions, phase: Phase) -> str:
    verify = "optional" if phase == "accept" else "require"
    aliases = "".join(f"    ServerAlias {name}\n" for name in opts.server_names[1:])
    if opts.app_url:
        content = (
            "    # needs mod_proxy and mod_proxy_http\n"
            f"    ProxyPass / {opts.app_url.rstrip('/')}/\n"
            f"    ProxyPassReverse / {opts.app_url.rstrip('/')}/\n"
            '    RequestHeader set X-Client-Verify "%{SSL_CLIENT_VERIFY}s"\n'
        )
    else:
        content = "    # ... your existing DocumentRoot / directives ...\n"
    accept_note = (
        "    # accept phase: log %{SSL_CLIENT_VERIFY}x (NONE = no certificate) until only the edge's\n"
        "    # requests arrive, then switch to the enforce phase.\n"
        if phase == "accept"
        else ""
    )
    return (
        f"# originlock AOP for {opts.primary_name} - {phase} phase (needs mod_ssl)\n"
        f"# Listen {opts.listen_port}   (uncomment unless ports.conf already listens there)\n"
        f"<VirtualHost *:{opts.listen_port}>\n"
        f"    ServerName {opts.primary_name}\n"
        f"{aliases}"
        "    SSLEngine on\n"
        f"    SSLCertificateFile {opts.server_cert_path}\n"
        f"    SSLCertificateKeyFile {opts.server_key_path}\n"
        "    # CA(s) whose certificates the edge presents; only these may connect.\n"
        f"    SSLCACertificateFile {opts.ca_bundle_path}\n"
        f"    SSLVerifyClient {verify}\n"
        f"    SSLVerifyDepth {opts.verify_depth}\n"
        f"{accept_note}"
        f"{content}"
        "</VirtualHost>\n"
    )
