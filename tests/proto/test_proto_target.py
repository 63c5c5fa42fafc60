"""The one request-target parser and Cloudflare's URL normalisation (proto/target.py), with properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from originlock.errors import MalformedRequest
from originlock.pipeline.builtin.ssl_mode import redirect
from originlock.proto.target import normalize_path, normalize_target, path_and_query, resolve_target, split_absolute

UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
PATH_BYTES = set(UNRESERVED + b"!$&'()*+,;=:@/%")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        # developers.cloudflare.com/rules/normalization/examples ("Cloudflare" type).
        (b"/%68ello//pa\\th", b"/hello/pa/th"),
        (b"/hello//../path", b"/path"),
        (b"/hello/\\../path", b"/path"),
        (b"/en//%68ello\\path", b"/en/hello/path"),
        (b"\\hello", b"/hello"),
        (b"/./en//hello./", b"/en/hello./"),
        # The bypasses of issue 10 item 6.
        (b"//admin/", b"/admin/"),
        (b"///admin/index.html", b"/admin/index.html"),
        (b"/x\\..\\admin", b"/admin"),
        # RFC 3986 §6.2.2: unreserved decoded, other encodings upper-cased, reserved left alone.
        (b"/%2e%2e/admin", b"/admin"),
        (b"/%41%7e%2D", b"/A~-"),
        (b"/a%2fb%3b", b"/a%2Fb%3B"),
        (b"/a%zz%", b"/a%25zz%25"),
        (b'/a"<>{}|^`', b"/a%22%3C%3E%7B%7D%7C%5E%60"),
        # RFC 3986 §5.2.4.
        (b"/../admin", b"/admin"),
        (b"/a/b/..", b"/a/"),
        (b"/a/./b/.", b"/a/b/"),
        (b"/", b"/"),
        (b"/.well-known/x", b"/.well-known/x"),
    ],
)
def test_cloudflare_normalisation_examples(raw: bytes, normal: bytes) -> None:
    assert normalize_path(raw) == normal


def _is_normal(path: bytes) -> bool:
    segments = path.split(b"/")[1:]
    return (
        path.startswith(b"/")
        and b"//" not in path
        and not any(segment in (b".", b"..") for segment in segments)
        and set(path) <= PATH_BYTES
        and all(
            int(m.group(1), 16) not in UNRESERVED and m.group(1) == m.group(1).upper()
            for m in re.finditer(rb"%(..)", path)
        )
        and not re.search(rb"%(?![0-9A-F]{2})", path)
    )


# Paths built mostly from the bytes that matter: separators, dots, percent signs and hex digits.
paths = st.lists(
    st.sampled_from([b"/", b"\\", b".", b"..", b"%", b"2e", b"2F", b"41", b"a", b"Z", b"~", b"\xff", b'"'])
)


def _normal_or_none(raw: bytes) -> bytes | None:
    try:
        return normalize_path(raw)
    except MalformedRequest:
        return None


@given(paths.map(b"".join))
def test_normalisation_is_idempotent_and_canonical(raw: bytes) -> None:
    once = _normal_or_none(raw)
    if once is None:  # refused: only ever because of an encoded slash or backslash
        assert re.search(rb"%(2f|5c)", raw, flags=re.IGNORECASE), raw
        return
    assert _is_normal(once), once
    assert normalize_path(once) == once


@pytest.mark.parametrize("raw", [b"/x/..%2Fadmin", b"/x/..%5cadmin", b"/%2F/admin", b"/a/%2e%2e%2fb", b"/a%2F%2Fb"])
def test_encoded_slashes_forming_dot_segments_are_refused(raw: bytes) -> None:
    with pytest.raises(MalformedRequest):
        normalize_path(raw)


def test_encoded_slashes_inside_a_segment_pass() -> None:
    assert normalize_path(b"/repos/group%2fproject/..%2Ex") == b"/repos/group%2Fproject/...x"


@given(st.lists(st.text(alphabet="abcXYZ09-._~", min_size=1, max_size=6), max_size=5), st.data())
def test_spellings_of_one_path_normalise_alike(segments: list[str], data: st.DataObject) -> None:
    """A path whose segments are spelt with encoded letters, doubled or back slashes and ``x/..`` detours
    normalises to the plain spelling (what a WAF rule is written against)."""
    plain = ("/" + "/".join(s for s in segments if s not in (".", ".."))).encode()
    spelt = b""
    for segment in plain.split(b"/")[1:]:
        spelt += data.draw(st.sampled_from([b"/", b"//", b"\\", b"/./", b"/zz/../"]))
        spelt += b"".join(
            b"%%%02x" % c if data.draw(st.booleans()) else bytes((c,)) for c in segment
        )  # lower-case hex: decoded all the same
    assert normalize_path(spelt or b"/") == normalize_path(plain)


@given(paths.map(b"".join))
def test_normal_targets_are_returned_unchanged(raw: bytes) -> None:
    path = _normal_or_none(raw)
    if path is None:
        return
    target = path + b"?q=%20//x/../\\"
    assert normalize_target(target) == target  # the query is never touched


def test_fast_path_returns_the_same_object_and_fragments_are_dropped() -> None:
    target = b"/api/v1/users?id=7&sort=name"
    assert normalize_target(target) is target
    assert normalize_target(b"/admin#frag") == b"/admin"
    assert normalize_target(b"//a?x=//y#f") == b"/a?x=//y"


def test_one_parser_of_absolute_form_for_waf_and_redirect() -> None:
    """Issue 12: ``http://h?a=/b`` gave the redirect path ``/b`` and the WAF path ``/``."""
    assert split_absolute(b"http://h?a=/b") == (b"h", b"/?a=/b")
    assert path_and_query(b"http://h?a=/b") == (b"/", b"a=/b")
    location = dict(redirect("https", "h", 443, b"http://h?a=/b").headers)[b"Location"]
    assert location == b"https://h/?a=/b"
    assert split_absolute(b"HTTPS://h:8443/p?q") == (b"h:8443", b"/p?q")
    assert split_absolute(b"/p") is None and split_absolute(b"ftp://h/") is None
    assert path_and_query(b"*") == (b"/", b"")


def test_resolve_target_replaces_host_with_the_authority() -> None:
    target, fields = resolve_target(b"http://www.d.test/ad//min", [(b"Host", b"www.a.test"), (b"X", b"1")], b"1.1")
    assert (target, fields) == (b"/ad/min", [(b"Host", b"www.d.test"), (b"X", b"1")])
    target, fields = resolve_target(b"http://www.d.test", [], b"1.0")  # HTTP/1.0 may omit Host
    assert (target, fields) == (b"/", [(b"Host", b"www.d.test")])


@pytest.mark.parametrize(
    ("target", "headers", "version"),
    [
        (b"http://www.d.test/", [], b"1.1"),  # RFC 9112 §3.2 and nginx: HTTP/1.1 without Host is 400
        (b"http://www.d.test/", [(b"Host", b"a"), (b"host", b"b")], b"1.1"),
        (b"http:///x", [(b"Host", b"a")], b"1.1"),
        (b"http://user@www.d.test/", [(b"Host", b"a")], b"1.1"),
        (b"*", [(b"Host", b"a")], b"1.1"),
        (b"www.d.test:443", [(b"Host", b"a")], b"1.1"),
        (b"ftp://www.d.test/", [(b"Host", b"a")], b"1.1"),
    ],
)
def test_unusable_targets_are_refused(target: bytes, headers: list[tuple[bytes, bytes]], version: bytes) -> None:
    with pytest.raises(MalformedRequest):
        resolve_target(target, headers, version)
