"""Server-side ``SSLContext`` for a Python origin (uvicorn, gunicorn, wsgiref) that requires the edge's cert.

With ``CERT_REQUIRED`` OpenSSL refuses, during the handshake, every client whose certificate does not
chain to the edge CA: nothing reaches the app. The middleware (``asgi.py``/``wsgi.py``) then adds what
OpenSSL cannot do: the per-hostname pin.

Gunicorn (>= 21) and uvicorn (>= 0.35) both accept a ``ssl_context(config, default_factory)`` hook; use
:func:`context_factory` for either.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import Any

from originlock.originkit.memcert import load_cert_chain_from_memory

__all__ = ["context_factory", "make_origin_ssl_context"]

StrPath = str | os.PathLike[str]


def make_origin_ssl_context(
    certfile: StrPath | None = None,
    keyfile: StrPath | None = None,
    *,
    edge_ca_file: StrPath | None = None,
    edge_ca_pem: str | None = None,
    cert_pem: str | bytes | None = None,
    key_pem: str | bytes | None = None,
    require: bool = True,
) -> ssl.SSLContext:
    """A TLS server context presenting the origin's certificate and verifying the edge's client certificate.

    Args:
        certfile, keyfile: the origin's own certificate chain and key (paths), or
        cert_pem, key_pem: the same held in memory (loaded via memfd, never written to disk).
        edge_ca_file / edge_ca_pem: the CA bundle the edge's client certificates chain to (one is required).
        require: ``CERT_REQUIRED`` (enforce); False gives ``CERT_OPTIONAL`` (the accept phase).

    Raises:
        ValueError: no CA, or neither path nor PEM for the server certificate.
        ssl.SSLError / OSError / KeyMaterialError: the files or PEM could not be loaded.
    """
    if edge_ca_file is None and edge_ca_pem is None:
        raise ValueError("make_origin_ssl_context needs edge_ca_file or edge_ca_pem")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # TLS 1.2 floor: what Cloudflare's edge and every maintained server support.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile is not None:
        ctx.load_cert_chain(os.fspath(certfile), None if keyfile is None else os.fspath(keyfile))
    elif cert_pem is not None and key_pem is not None:
        load_cert_chain_from_memory(ctx, cert_pem, key_pem)
    else:
        raise ValueError("make_origin_ssl_context needs certfile (+keyfile) or cert_pem and key_pem")
    ctx.load_verify_locations(cafile=None if edge_ca_file is None else os.fspath(edge_ca_file), cadata=edge_ca_pem)
    ctx.verify_mode = ssl.CERT_REQUIRED if require else ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def context_factory(
    certfile: StrPath, keyfile: StrPath | None, edge_ca_file: StrPath, *, require: bool = True
) -> Callable[[Any, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """A ``ssl_context(config, default_factory)`` hook for uvicorn's ``ssl_context_factory`` or gunicorn."""

    def factory(_config: Any, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return make_origin_ssl_context(certfile, keyfile, edge_ca_file=edge_ca_file, require=require)

    return factory
