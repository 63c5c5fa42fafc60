"""HAProxy: ``verify optional`` (accept) then ``verify required`` on the TLS ``bind`` line.

HAProxy's ``crt`` wants the certificate and key in one file, or the key beside it as ``<crt>.key``
(HAProxy >= 2.2); the snippet names the key path in a comment so the operator can arrange either.
"""

from __future__ import annotations

from originlock.originkit.snippets.options import Phase, SnippetOptions

__all__ = ["render"]


def render(opts: SnippetOptions, phase: Phase) -> str:
    host, port = opts.app_host_port()
    verify = "optional" if phase == "accept" else "required"
    hosts = " ".join(opts.server_names)
    return (
        f"# originlock AOP for {opts.primary_name} - {phase} phase\n"
        f"# crt below must also contain the key, or the key must sit at {opts.server_cert_path}.key\n"
        f"# (the key you use today: {opts.server_key_path})\n"
        "frontend originlock_aop\n"
        "    mode http\n"
        f"    bind :{opts.listen_port} ssl crt {opts.server_cert_path} ca-file {opts.ca_bundle_path} "
        f"verify {verify}\n"
        f"    acl originlock_host hdr(host),field(1,:) -i {hosts}\n"
        "    # 0 = verified; with verify optional a missing certificate also passes (accept phase).\n"
        "    http-request set-header X-Client-Verify %[ssl_c_verify]\n"
        "    http-request set-header X-Client-Cert-Used %[ssl_c_used]\n"
        "    use_backend originlock_app if originlock_host\n"
        "    default_backend originlock_app\n"
        "\n"
        "backend originlock_app\n"
        "    mode http\n"
        f"    server app {host}:{port}\n"
    )
