"""Ray ids: Cloudflare's ``<16 hex>-<colo>`` request ids, unique per request across processes."""

from __future__ import annotations

import json
import os
from typing import Final

__all__ = ["RayIds"]

_HEX_PAIRS: Final = tuple(f"{i:02x}" for i in range(256))


class RayIds:
    """8 random hex digits per process, then 8 of a counter, then the colo."""

    __slots__ = ("_counter", "_prefix", "_suffix", "json_plain")

    def __init__(self, colo: str) -> None:
        self._prefix = os.urandom(4).hex()
        self._counter = int.from_bytes(os.urandom(4), "big")
        self._suffix = f"-{colo}"
        #: Every id is its own JSON string body (hex digits, a dash and a colo needing no escape): the
        #: access log then writes it as it is, without json's escaper (≈ 1k instructions per request).
        self.json_plain = json.encoder.encode_basestring_ascii(self._suffix) == f'"{self._suffix}"'

    def next(self) -> str:
        self._counter = counter = (self._counter + 1) & 0xFFFFFFFF
        # Four lookups in a table of byte pairs and one string built from six pieces: one allocation,
        # where an f-string with a "{:08x}" spec parses the spec per call (≈ 3x slower) and hex() plus
        # slicing allocates three times (docs/performance.md, step 6).
        h = _HEX_PAIRS
        return (
            f"{self._prefix}{h[counter >> 24]}{h[(counter >> 16) & 255]}"
            f"{h[(counter >> 8) & 255]}{h[counter & 255]}{self._suffix}"
        )
