"""Function signatures of the Rules language (spec §1.10), checked while parsing.

Only functions Cloudflare documents for WAF custom rules are registered. Transform-only functions
(``to_string``, ``regex_replace``, ...) are named in ``TRANSFORM_ONLY`` so the parser can say why
they are refused instead of "unknown identifier". Implementations live in ``builtins.py``.

A parameter is of kind *field* (any non-literal: a field, a call, a comparison), *literal*, or
either, as in wirefilter's ``SimpleFunctionArgKind``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from .types import BOOL, BYTES, INT, IP, Kind, Type, array_of

__all__ = ["FUNCTIONS", "TRANSFORM_ONLY", "ArgInfo", "ArgKind", "FunctionDef", "FunctionError"]


class ArgKind(enum.Enum):
    FIELD = "Field"
    LITERAL = "Literal"
    BOTH = "Both"


@dataclass(frozen=True, slots=True)
class ArgInfo:
    """What the parser knows about one argument when checking it."""

    kind: ArgKind
    type: Type
    literal: object = None


class FunctionError(Exception):
    """An argument problem; the parser adds the argument's span."""


@dataclass(frozen=True, slots=True)
class Param:
    kind: ArgKind
    accepts: Callable[[Type], bool]
    expected: str


@dataclass(frozen=True, slots=True)
class FunctionDef:
    name: str
    params: tuple[Param, ...]
    optional: tuple[Param, ...] = ()
    variadic: Param | None = None
    returns: Callable[[Sequence[ArgInfo]], Type] = lambda args: BYTES
    validate: Callable[[int, ArgInfo], None] | None = None

    @property
    def min_args(self) -> int:
        return len(self.params)

    @property
    def max_args(self) -> int | None:
        return None if self.variadic else len(self.params) + len(self.optional)

    def check(self, index: int, arg: ArgInfo, previous: Sequence[ArgInfo]) -> None:
        """Raise ``FunctionError`` when ``arg`` cannot be argument ``index``."""
        param = self._param(index, previous)
        if param.kind is not ArgKind.BOTH and param.kind is not arg.kind:
            raise FunctionError(
                f"invalid kind of argument #{index}: expected argument of kind "
                f"{param.kind.value}, but got {arg.kind.value}"
            )
        if not param.accepts(arg.type):
            raise FunctionError(
                f"invalid type of argument #{index}: expected value of type {param.expected}, but got {arg.type}"
            )
        if self.validate is not None:
            self.validate(index, arg)

    def _param(self, index: int, previous: Sequence[ArgInfo]) -> Param:
        if self.name == "concat" and index > 0:
            # concat: every argument has the type of the first (wirefilter ConcatFunction).
            first = previous[0].type
            return Param(ArgKind.BOTH, lambda t: t == first, str(first))
        if index < len(self.params):
            return self.params[index]
        if index < len(self.params) + len(self.optional):
            return self.optional[index - len(self.params)]
        assert self.variadic is not None
        return self.variadic


def _is(t: Type) -> Callable[[Type], bool]:
    return lambda actual: actual == t


def _field(t: Type) -> Param:
    return Param(ArgKind.FIELD, _is(t), str(t))


def _literal(t: Type) -> Param:
    return Param(ArgKind.LITERAL, _is(t), str(t))


_BYTES_OR_ARRAY: Final = Param(ArgKind.BOTH, lambda t: t == BYTES or t.kind is Kind.ARRAY, "Bytes or Array")
_LEN_ARG: Final = Param(ArgKind.FIELD, lambda t: t == BYTES or t.kind is Kind.ARRAY, "Bytes or Array")
_JSON_KEY: Final = Param(ArgKind.LITERAL, lambda t: t in (BYTES, INT), "Bytes or Int")
_BOOL_ARRAY: Final = Param(ArgKind.FIELD, _is(array_of(BOOL)), "Array<Bool>")


def _url_decode_options(index: int, arg: ArgInfo) -> None:
    if index != 1:
        return
    if not isinstance(arg.literal, bytes) or not set(arg.literal) <= set(b"ru"):
        raise FunctionError(f'invalid value of argument #{index}: options are "r", "u" or "ur"')


def _cidr_bits(index: int, arg: ArgInfo) -> None:
    if not isinstance(arg.literal, int):
        return
    # cidr(ip, v4_bits, v6_bits): 1-32 then 1-128; cidr6(ip, v6_bits): 1-128.
    limit = 32 if index == 1 else 128
    if not 1 <= arg.literal <= limit:
        raise FunctionError(f"invalid value of argument #{index}: expected 1 to {limit}")


def _cidr6_bits(index: int, arg: ArgInfo) -> None:
    if isinstance(arg.literal, int) and not 1 <= arg.literal <= 128:
        raise FunctionError(f"invalid value of argument #{index}: expected 1 to 128")


def _first_type(args: Sequence[ArgInfo]) -> Type:
    return args[0].type


def _defs() -> dict[str, FunctionDef]:
    b, i = _field(BYTES), _literal(INT)
    defs = [
        FunctionDef("any", (_BOOL_ARRAY,), returns=lambda a: BOOL),
        FunctionDef("all", (_BOOL_ARRAY,), returns=lambda a: BOOL),
        FunctionDef("lower", (b,)),
        FunctionDef("upper", (b,)),
        FunctionDef("len", (_LEN_ARG,), returns=lambda a: INT),
        FunctionDef("starts_with", (b, Param(ArgKind.BOTH, _is(BYTES), "Bytes")), returns=lambda a: BOOL),
        FunctionDef("ends_with", (b, Param(ArgKind.BOTH, _is(BYTES), "Bytes")), returns=lambda a: BOOL),
        FunctionDef("concat", (_BYTES_OR_ARRAY, _BYTES_OR_ARRAY), variadic=_BYTES_OR_ARRAY, returns=_first_type),
        FunctionDef("url_decode", (b,), optional=(_literal(BYTES),), validate=_url_decode_options),
        FunctionDef("decode_base64", (b,)),
        FunctionDef("encode_base64", (b,), optional=(_literal(BYTES),)),
        FunctionDef("sha256", (b,)),
        FunctionDef("lookup_json_string", (b, _JSON_KEY), variadic=_JSON_KEY),
        FunctionDef("lookup_json_integer", (b, _JSON_KEY), variadic=_JSON_KEY, returns=lambda a: INT),
        FunctionDef("remove_bytes", (b, _literal(BYTES))),
        FunctionDef("substring", (b, i), optional=(i,)),
        FunctionDef("cidr", (_field(IP), i, i), returns=lambda a: IP, validate=_cidr_bits),
        FunctionDef("cidr6", (_field(IP), i), returns=lambda a: IP, validate=_cidr6_bits),
        FunctionDef("join", (_field(array_of(BYTES)), _literal(BYTES))),
        FunctionDef(
            "is_timed_hmac_valid_v0",
            (_literal(BYTES), b, i, _field(INT)),
            optional=(i, _literal(BYTES)),
            returns=lambda a: BOOL,
        ),
    ]
    return {d.name: d for d in defs}


FUNCTIONS: Final = _defs()

TRANSFORM_ONLY: Final = frozenset(
    {"to_string", "regex_replace", "wildcard_replace", "remove_query_args", "uuidv4", "split"}
)
"""Documented functions that Cloudflare allows only in rewrite/redirect expressions (§1.10)."""
