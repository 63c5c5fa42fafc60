"""nginx: ``ssl_verify_client optional`` (accept) then ``on`` (enforce), as Cloudflare documents (spec §11)."""

from __future__ import annotations

from originlock.originkit.snippets.options import Phase, SnippetOptions

__all__ = ["render"]


def render(opts: SnippetOptions, phase: Phase) -> str:
    verify = "optional" if phase == "accept" else "on"
    if opts.app_url:
        content = (
            "    location / {\n"
            f"        proxy_pass {opts.app_url};\n"
            "        proxy_set_header Host $host;\n"
            "        # Lets the app (or originkit's middleware) see the result; nginx already enforced it.\n"
            "        proxy_set_header X-Client-Verify $ssl_client_verify;\n"
            "    }\n"
        )
    else:
        content = "    # ... your existing locations ...\n"
    accept_note = (
        "    # accept phase: requests without a certificate still pass; watch $ssl_client_verify in the\n"
        "    # log (NONE = no certificate) until only the edge's requests arrive, then switch to enforce.\n"
        if phase == "accept"
        else ""
    )
    return (
        f"# originlock AOP for {opts.primary_name} - {phase} phase\n"
        "server {\n"
        f"    listen {opts.listen_port} ssl;\n"
        f"    server_name {' '.join(opts.server_names)};\n"
        f"    ssl_certificate     {opts.server_cert_path};\n"
        f"    ssl_certificate_key {opts.server_key_path};\n"
        "    # CA(s) whose certificates the edge presents; only these may connect.\n"
        f"    ssl_client_certificate {opts.ca_bundle_path};\n"
        f"    ssl_verify_client {verify};\n"
        f"    ssl_verify_depth {opts.verify_depth};\n"
        f"{accept_note}"
        f"{content}"
        "}\n"
    )
