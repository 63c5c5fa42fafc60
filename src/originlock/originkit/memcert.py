"""Load a certificate chain and private key into an ``SSLContext`` without writing the key to disk.

``ssl.SSLContext.load_cert_chain`` only takes paths. Writing the key to a temporary file would leave it
in clear on a filesystem (and in backups, and after a crash), so on Linux we use an anonymous
``memfd_create(2)`` file: it lives only in memory, has no name in any directory, and disappears when
the descriptor is closed. OpenSSL opens it through ``/proc/self/fd/N``.

Resource handling: the descriptor is closed before returning, on success and on failure.
Error handling: OpenSSL's error is re-raised as :class:`KeyMaterialError` without the key, and without
the original exception chained (its text is OpenSSL's, which we do not vouch for).
"""

from __future__ import annotations

import ssl

from originlock.tls.memory import load_chain_from_memory, memfd_supported

__all__ = ["KeyMaterialError", "load_cert_chain_from_memory", "memfd_supported"]


class KeyMaterialError(ValueError):
    """The certificate chain or key could not be loaded; the message never contains key material."""


def load_cert_chain_from_memory(ctx: ssl.SSLContext, chain_pem: str | bytes, key_pem: str | bytes) -> None:
    """Call ``ctx.load_cert_chain`` with a PEM chain (leaf first) and an unencrypted PEM key held in memory.

    Raises:
        KeyMaterialError: not Linux, or OpenSSL refused the chain or the key (mismatch, bad PEM).
    """
    if not memfd_supported():
        # Deliberately no temp-file fallback: keys never touch a disk in clear
        # (docs/edge.md, "Private keys into SSLContext").
        raise KeyMaterialError("loading a client key from memory needs Linux (memfd_create)")
    chain = chain_pem.encode() if isinstance(chain_pem, str) else chain_pem
    key = key_pem.encode() if isinstance(key_pem, str) else key_pem
    try:
        load_chain_from_memory(ctx, chain, key)
    except (ssl.SSLError, OSError, ValueError):
        raise KeyMaterialError(
            "the client certificate chain or key could not be loaded (mismatch or bad PEM)"
        ) from None
