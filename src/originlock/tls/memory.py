"""Load a certificate chain and private key into an ``SSLContext`` without writing the key to disk.

``ssl.SSLContext.load_cert_chain`` only takes file paths. Writing the key to a temporary file (even 0600,
even unlinked at once) puts it on a filesystem, in clear. Instead the PEM goes into an anonymous
in-memory file from ``memfd_create(2)`` (Linux >= 3.17), which OpenSSL opens through
``/proc/self/fd/N``; the descriptor is closed as soon as the context holds the key. The memory is the
process's own (swappable like the rest of its heap, which already holds the key as ``bytes``); nothing is
created on any mounted filesystem. ``MFD_CLOEXEC`` keeps the descriptor from leaking into children.
A FIFO was the alternative; it needs a filesystem entry and a writer thread, so memfd was chosen.
"""

from __future__ import annotations

import os
import ssl

__all__ = ["load_chain_from_memory", "memfd_supported"]


def memfd_supported() -> bool:
    """True where ``memfd_create`` and ``/proc/self/fd`` exist (Linux)."""
    return hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def load_chain_from_memory(ctx: ssl.SSLContext, chain_pem: bytes, key_pem: bytes) -> None:
    """Install ``chain_pem`` (leaf first) and ``key_pem`` into ``ctx``: the edge's client and visitor
    certificates, and the origin kit's probes and TLS contexts, all load keys this one way.

    Raises:
        ssl.SSLError: the chain and key do not parse or do not match.
        OSError: memfd is unavailable (not Linux).
    """
    fd = os.memfd_create("originlock-cert", os.MFD_CLOEXEC)
    try:
        data = memoryview(chain_pem.rstrip(b"\n") + b"\n" + key_pem)
        while data:
            written = os.write(fd, data)
            data = data[written:]
        path = f"/proc/self/fd/{fd}"
        ctx.load_cert_chain(path, path)
    finally:
        os.close(fd)
