"""Ray ids: Cloudflare's ``<16 hex>-<colo>`` request ids, unique per request across processes."""

from __future__ import annotations

import json
import os
from typing import Final

__all__ = ["RayIds"]

_HEX_PAIRS: Final = tuple(f"{i:02x}" for i in range(256))


class RayIds:
    """8 random hex digits per process, then 8 of a counter, then the colo.

    Consecutive ids differ in their last two digits but once in 256: the first 14 digits are kept rendered
    (``_head``, for the counter's upper 24 bits in ``_high``) and the last two come with the colo from a
    table of 256 endings, so an id is one concatenation of two strings (docs/performance.md, issue 11,
    accessline)."""

    __slots__ = ("_counter", "_endings", "_head", "_high", "_prefix", "json_plain")

    def __init__(self, colo: str) -> None:
        self._prefix = os.urandom(4).hex()
        self._counter = int.from_bytes(os.urandom(4), "big")
        suffix = f"-{colo}"
        self._endings = tuple(pair + suffix for pair in _HEX_PAIRS)
        self._high = -1
        self._head = ""
        #: Every id is its own JSON string body (hex digits, a dash and a colo needing no escape): the
        #: access log then writes it as it is, without json's escaper (≈ 1k instructions per request).
        self.json_plain = json.encoder.encode_basestring_ascii(suffix) == f'"{suffix}"'

    def next(self) -> str:
        self._counter = counter = (self._counter + 1) & 0xFFFFFFFF
        high = counter >> 8
        if high != self._high:
            # Once in 256 ids (and after the counter was set): three lookups in a table of byte pairs.
            h = _HEX_PAIRS
            self._head = f"{self._prefix}{h[high >> 16]}{h[(high >> 8) & 255]}{h[high & 255]}"
            self._high = high
        return self._head + self._endings[counter & 255]
