"""Hypothesis properties of the parser: it never crashes, and print -> reparse is stable."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from originlock.waf import ParseError, parse, to_source

_ALPHABET = st.sampled_from(
    [
        *'abcdefhilmnoqrstuvwxyz0123456789_.[]*(){}"\\#$!&|^~=<>-:/, \t\r\n',
        "http.host",
        "ip.src",
        " eq ",
        " in ",
        " and ",
        " or ",
        " not ",
        "any(",
        "lower(",
        "[*]",
        'r#"',
        '"#',
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_parser_never_crashes_on_token_soup(text: str) -> None:
    try:
        parse(text)
    except ParseError as exc:
        assert 0 <= exc.start <= exc.end <= len(text)
        assert str(exc).startswith("Filter parsing error (")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parser_never_crashes_on_any_text(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse(text)


_BYTES_FIELDS = st.sampled_from(
    ["http.host", "http.request.uri.path", "http.user_agent", 'http.request.headers["x"][0]']
)
_STRINGS = st.binary(max_size=8).map(lambda b: '"' + "".join(f"\\x{c:02x}" for c in b) + '"')
_RAW = st.text(alphabet='ab"#*\\', max_size=6).map(lambda t: 'r###"' + t.replace('"###', "") + '"###')


@st.composite
def _comparison(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["bytes", "int", "ip", "bool", "any", "func"]))
    if kind == "bytes":
        op = draw(st.sampled_from(["eq", "ne", "lt", "contains", "==", "!="]))
        return f"{draw(_BYTES_FIELDS)} {op} {draw(_STRINGS)}"
    if kind == "int":
        n = draw(st.integers(-(1 << 63), (1 << 63) - 1))
        low = draw(st.integers(0, 100))
        return draw(
            st.sampled_from(
                [
                    f"cf.edge.server_port eq {n}",
                    f"cf.edge.server_port in {{{low}..{low + 5} {n}}}",
                    f"cf.waf.score & {n}",
                ]
            )
        )
    if kind == "ip":
        a = draw(st.ip_addresses())
        return draw(st.sampled_from([f"ip.src eq {a}", f"ip.src in {{{a} 10.0.0.0/8}}", f"ip.src ne {a}"]))
    if kind == "bool":
        return draw(st.sampled_from(["ssl", "http.request.body.truncated", "true"]))
    if kind == "any":
        return f"any(http.request.headers.names[*] {draw(st.sampled_from(['eq', 'contains']))} {draw(_STRINGS)})"
    raw = draw(_RAW)
    return draw(
        st.sampled_from(
            [
                f"lower(http.host) wildcard {raw}",
                f"http.host matches {raw}",
                f"starts_with(http.request.uri.path, {draw(_STRINGS)})",
            ]
        )
    )


_EXPR = st.recursive(
    _comparison(),
    lambda inner: st.one_of(
        inner.map(lambda e: f"not {e}"),
        inner.map(lambda e: f"({e})"),
        st.tuples(inner, st.sampled_from(["and", "or", "xor", "&&", "||", "^^"]), inner).map(" ".join),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_EXPR)
def test_print_then_reparse_is_stable(text: str) -> None:
    try:
        first = parse(text)
    except ParseError:
        return  # e.g. a random raw string that is not a valid wildcard or regex
    printed = to_source(first)
    second = parse(printed)
    assert second == first
    assert to_source(second) == printed
