"""The value types of the Rules language and the Python values that carry them at run time.

wirefilter has six types: ``Bytes`` (the docs call it String), ``Int`` (i64), ``Ip``, ``Bool``,
``Array<T>`` and ``Map<T>`` (string keys). At run time we carry them as:

=========  =============================================================
Bytes      ``bytes`` (field values are raw bytes; invalid UTF-8 is allowed)
Int        ``int`` (literals are range-checked to i64 by the lexer)
Ip         ``IpValue``: ``(family, int)``; comparing v4 with v6 is "incomparable"
Bool       ``bool``
Array<T>   ``tuple`` of T
Map<T>     ``dict[bytes, T]`` (keys are bytes, as wirefilter compares key bytes)
missing    ``None`` (an absent field, map key or array index)
=========  =============================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "BOOL",
    "BYTES",
    "INT",
    "IP",
    "IpValue",
    "Kind",
    "Type",
    "Value",
    "array_of",
    "map_of",
]


class Kind(enum.Enum):
    BYTES = "Bytes"
    INT = "Int"
    IP = "Ip"
    BOOL = "Bool"
    ARRAY = "Array"
    MAP = "Map"


@dataclass(frozen=True, slots=True)
class Type:
    """A Rules-language type; ``inner`` is set only for ``Array`` and ``Map``."""

    kind: Kind
    inner: Type | None = None

    def __str__(self) -> str:
        if self.inner is None:
            return self.kind.value
        return f"{self.kind.value}<{self.inner}>"

    @property
    def is_container(self) -> bool:
        return self.kind is Kind.ARRAY or self.kind is Kind.MAP


BYTES = Type(Kind.BYTES)
INT = Type(Kind.INT)
IP = Type(Kind.IP)
BOOL = Type(Kind.BOOL)


def array_of(inner: Type) -> Type:
    return Type(Kind.ARRAY, inner)


def map_of(inner: Type) -> Type:
    return Type(Kind.MAP, inner)


IpValue: TypeAlias = tuple[int, int]
"""``(4 | 6, integer address)``: tuples compare fast and make range checks two comparisons."""

Value: TypeAlias = "bytes | int | bool | IpValue | tuple[Value, ...] | dict[bytes, Value] | None"
