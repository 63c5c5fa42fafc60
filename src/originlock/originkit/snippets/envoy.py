"""Envoy (static YAML): ``require_client_certificate`` false (accept) then true (enforce).

The HTTP connection manager is set to forward the verified certificate in ``X-Forwarded-Client-Cert``
(``SANITIZE_SET``: any such header from outside is dropped first), which is the format originkit's
forwarded-certificate mode reads.
"""

from __future__ import annotations

import json
from typing import Any

from originlock.originkit.snippets.options import Phase, SnippetOptions

__all__ = ["config", "render"]

_API = "type.googleapis.com/envoy.extensions"


def config(opts: SnippetOptions, phase: Phase) -> dict[str, Any]:
    """The configuration as data (tests check its structure; ``render`` prints it as YAML-compatible JSON)."""
    host, port = opts.app_host_port()
    tls_context = {
        "@type": f"{_API}.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": phase == "enforce",
        "common_tls_context": {
            "tls_certificates": [
                {
                    "certificate_chain": {"filename": opts.server_cert_path},
                    "private_key": {"filename": opts.server_key_path},
                }
            ],
            "validation_context": {"trusted_ca": {"filename": opts.ca_bundle_path}},
        },
    }
    hcm = {
        "@type": f"{_API}.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "originlock_aop",
        "forward_client_cert_details": "SANITIZE_SET",
        "set_current_client_cert_details": {"cert": True},
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "origin",
                    "domains": [*opts.server_names, *(f"{n}:{opts.listen_port}" for n in opts.server_names)],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "originlock_app"}}],
                }
            ]
        },
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": f"{_API}.filters.http.router.v3.Router"}}
        ],
    }
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": "originlock_aop",
                    "address": {"socket_address": {"address": "0.0.0.0", "port_value": opts.listen_port}},
                    "filter_chains": [
                        {
                            "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls_context},
                            "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}],
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "originlock_app",
                    "type": "STRICT_DNS",
                    "load_assignment": {
                        "cluster_name": "originlock_app",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
                                ]
                            }
                        ],
                    },
                }
            ],
        }
    }


def render(opts: SnippetOptions, phase: Phase) -> str:
    # JSON is valid YAML, and Envoy reads either; emitting JSON needs no YAML library on the origin.
    header = f"# originlock AOP for {opts.primary_name} - {phase} phase (envoy -c this-file.yaml)\n"
    return header + json.dumps(config(opts, phase), indent=2) + "\n"
