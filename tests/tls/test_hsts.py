"""The zone setting ``security_header`` as response fields: built once from the stored value, checked, only
what the setting asks for; read back from a saved copy only when it is what the builder makes; and the
zone's fields replace an origin's of the same names."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from originlock.tls.hsts import MAX_AGE_LIMIT, saved_fields, security_header_fields, with_security_fields

STS = b"Strict-Transport-Security"


def _setting(**sts: Any) -> dict[str, Any]:
    return {"strict_transport_security": sts}


@pytest.mark.parametrize(
    ("sts", "expected"),
    [
        ({}, ()),  # Cloudflare's default: everything off
        ({"enabled": False, "max_age": 86400, "include_subdomains": True}, ()),
        ({"enabled": True, "max_age": 86400}, ((STS, b"max-age=86400"),)),
        ({"enabled": True}, ((STS, b"max-age=0"),)),  # max-age=0: browsers forget the policy
        (
            {"enabled": True, "max_age": 31536000, "include_subdomains": True, "preload": True},
            ((STS, b"max-age=31536000; includeSubDomains; preload"),),
        ),
        ({"enabled": True, "max_age": 600.0, "preload": True}, ((STS, b"max-age=600; preload"),)),
        (
            {"enabled": True, "max_age": 600, "nosniff": True},
            ((STS, b"max-age=600"), (b"X-Content-Type-Options", b"nosniff")),
        ),
        ({"enabled": False, "nosniff": True}, ((b"X-Content-Type-Options", b"nosniff"),)),
    ],
)
def test_fields_follow_the_setting(sts: dict[str, Any], expected: tuple[tuple[bytes, bytes], ...]) -> None:
    assert security_header_fields(_setting(**sts)) == expected


@pytest.mark.parametrize(
    "setting",
    [
        None,
        "on",
        {},
        {"strict_transport_security": "yes"},
        _setting(enabled=True, max_age=-1),
        _setting(enabled=True, max_age=MAX_AGE_LIMIT + 1),
        _setting(enabled=True, max_age=1.5),
        _setting(enabled=True, max_age="86400\r\nSet-Cookie: a=b"),
        _setting(enabled=True, max_age=True),
        _setting(enabled="true", max_age=86400),
        _setting(enabled=True, max_age=86400, preload="\r\nX: y"),
    ],
)
def test_malformed_settings_give_no_field(setting: object) -> None:
    assert security_header_fields(setting) == ()


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(), lambda c: st.dictionaries(st.text(), c)
    )
)
def test_any_value_gives_only_safe_fields(setting: object) -> None:
    for field in security_header_fields({"strict_transport_security": setting}):
        assert saved_fields([[field[0].decode(), field[1].decode()]]) == (field,)


def test_saved_fields_round_trip_and_refuse_anything_else() -> None:
    fields = security_header_fields(_setting(enabled=True, max_age=5, include_subdomains=True, nosniff=True))
    saved = [[name.decode(), value.decode()] for name, value in fields]
    assert saved_fields(saved) == fields
    assert saved_fields([]) == ()
    for bad in (
        "x",
        [["Strict-Transport-Security"]],
        [["Set-Cookie", "a=b"]],
        [["Strict-Transport-Security", "max-age=5\r\nSet-Cookie: a=b"]],
        [["X-Content-Type-Options", "sniff"]],
        [[1, 2]],
    ):
        with pytest.raises(ValueError):
            saved_fields(bad)


def test_zone_fields_replace_the_origins_own() -> None:
    fields = ((STS, b"max-age=600"),)
    origin = [(b"strict-transport-security", b"max-age=1"), (b"X-Content-Type-Options", b"nosniff"), (b"A", b"b")]
    assert with_security_fields(origin, fields) == [
        (b"X-Content-Type-Options", b"nosniff"),  # not the zone's to replace: nosniff is off
        (b"A", b"b"),
        (STS, b"max-age=600"),
    ]
