"""Evaluation of every operator, function and computed field against one sample request."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from originlock.waf import FieldValues, RequestFields, compile_expression, parse
from originlock.waf.context import KNOWN_FIELDS, normalize_path

BODY = b'user=bob&pw=secret&json={"a":{"b":[1,"x"]}}'
REQUEST = RequestFields(
    method="post",
    host="App.Example.com",
    path="/api/./v1/../v2/Users.JSON",
    query="q=%3Cscript%3E&a=1&a=2&empty=",
    headers=(
        (b"Host", b"App.Example.com"),
        (b"User-Agent", b"Mozilla/5.0 sqlmap"),
        (b"Referer", b"https://ref.example/"),
        (b"Cookie", b"session=abc; theme=dark"),
        (b"X-Multi", b"one"),
        (b"x-multi", b"two"),
        (b"Content-Type", b"application/x-www-form-urlencoded"),
        (b"Accept-Language", b"fr;q=0.5, en-GB"),
        (b"X-Forwarded-For", b"198.51.100.1"),
        (b"Authorization", b"Basic " + base64.b64encode(b"user:pw")),
    ),
    ip="203.0.113.7",
    scheme="https",
    ssl=True,
    http_version="HTTP/1.1",
    body=BODY,
    timestamp=1_700_000_000.25,
    extra={"cf.edge.server_port": 443, "cf.tls_version": b"TLSv1.3"},
)


def run(expression: str, request: RequestFields = REQUEST, **options: object) -> bool:
    return bool(compile_expression(parse(expression), **options)(FieldValues(request)))  # type: ignore[arg-type]


TRUE_CASES = [
    # fields
    'http.host eq "App.Example.com"',
    'http.request.method eq "POST"',
    'http.request.version eq "HTTP/1.1"',
    "ssl",
    "ip.src eq 203.0.113.7",
    'raw.http.request.uri.path eq "/api/./v1/../v2/Users.JSON"',
    'http.request.uri.path eq "/api/v2/Users.JSON"',
    'http.request.uri.path.extension eq "json"',
    'raw.http.request.uri.path.extension eq "json"',
    'http.request.uri.query eq "q=%3Cscript%3E&a=1&a=2&empty="',
    'raw.http.request.uri.query eq "q=%3Cscript%3E&a=1&a=2&empty="',
    'http.request.uri eq "/api/v2/Users.JSON?q=%3Cscript%3E&a=1&a=2&empty="',
    'starts_with(raw.http.request.uri, "/api/./")',
    'starts_with(http.request.full_uri, "https://App.Example.com/api/v2/")',
    'starts_with(raw.http.request.full_uri, "https://App.Example.com/api/./")',
    'http.request.uri.args["a"][1] eq "2"',
    'http.request.uri.args["empty"][0] eq ""',
    'http.request.uri.args["q"][0] eq "%3Cscript%3E"',
    'any(http.request.uri.args.names[*] eq "empty")',
    'any(http.request.uri.args.values[*] eq "2")',
    'raw.http.request.uri.args["a"][0] eq "1"',
    'any(raw.http.request.uri.args.names[*] eq "q")',
    'any(raw.http.request.uri.args.values[*] eq "1")',
    'http.request.headers["x-multi"][1] eq "two"',
    'any(http.request.headers.names[*] eq "X-Multi")',
    'any(http.request.headers.values[*] eq "one")',
    "not http.request.headers.truncated",
    'http.user_agent contains "sqlmap"',
    'http.referer eq "https://ref.example/"',
    'http.cookie eq "session=abc; theme=dark"',
    'http.request.cookies["theme"][0] eq "dark"',
    'http.x_forwarded_for eq "198.51.100.1"',
    'http.request.accepted_languages[0] eq "en-GB"',
    'http.request.body.raw contains "pw=secret"',
    f"http.request.body.size eq {len(BODY)}",
    "not http.request.body.truncated",
    'http.request.body.form["user"][0] eq "bob"',
    'any(http.request.body.form.names[*] eq "pw")',
    'any(http.request.body.form.values[*] eq "secret")',
    'http.request.body.mime eq "text/plain"',
    "http.request.timestamp.sec eq 1700000000",
    "http.request.timestamp.msec eq 250",
    "cf.edge.server_port eq 443",
    'cf.tls_version eq "TLSv1.3"',
    # operators
    'http.host ne "other"',
    'http.host lt "B"',
    'http.host le "App.Example.com"',
    'http.host gt "A"',
    'http.host ge "App"',
    "http.host == 41:70:70:2e:45:78:61:6d:70:6c:65:2e:63:6f:6d",
    'http.host contains "Example"',
    'http.host matches "(?i)^app\\.example\\.COM$"',
    'http.host ~ "Example"',
    'http.user_agent matches "\\bsqlmap$"',
    'http.request.uri.path matches "^/api/"',
    'http.host wildcard "*.example.COM"',
    'http.host strict wildcard "App.*.com"',
    'http.host wildcard r"*"',
    'http.host in {"x" "App.Example.com"}',
    "cf.edge.server_port in {80 440..450}",
    "cf.edge.server_port & 0x1",
    "cf.edge.server_port bitwise_and 3",
    "ip.src in {203.0.113.0/24}",
    "ip.src in {2001:db8::/32 203.0.113.1..203.0.113.9}",
    "ip.src ne ::1",
    "ip.src gt 1.2.3.4",
    "not ip.src lt ::1",
    "ssl and ssl or not ssl",
    "ssl xor not ssl",
    "ssl ^^ ssl ^^ ssl",
    "(not ssl) or ssl",
    "true",
    "not false",
    # functions
    'lower(http.host) eq "app.example.com"',
    'upper(http.host) eq "APP.EXAMPLE.COM"',
    "len(http.host) eq 15",
    'len(http.request.headers["x-multi"]) eq 2',
    'starts_with(http.host, "App")',
    'ends_with(http.host, ".com")',
    'concat(http.host, "/", http.request.method) eq "App.Example.com/POST"',
    'concat(http.request.headers["x-multi"], http.request.headers["x-multi"])[3] eq "two"',
    'url_decode(http.request.uri.args["q"][0]) eq "<script>"',
    'url_decode(http.request.uri.query, "r") contains "<script>"',
    'decode_base64(substring(http.request.headers["authorization"][0], 6)) eq "user:pw"',
    'encode_base64(http.request.method) eq "UE9TVA=="',
    "len(sha256(http.request.method)) eq 32",
    'lookup_json_string(substring(http.request.body.raw, 24), "a", "b", 1) eq "x"',
    'lookup_json_integer(substring(http.request.body.raw, 24), "a", "b", 0) eq 1',
    'remove_bytes(http.host, ".") eq "AppExamplecom"',
    'substring(http.host, -3) eq "com"',
    'substring(http.host, 0, 3) eq "App"',
    "cidr(ip.src, 24, 64) eq 203.0.113.0",
    "cidr6(ip.src, 64) eq 203.0.113.7",
    'join(http.request.headers["x-multi"], ",") eq "one,two"',
    'any(lower(http.request.headers.names[*])[*] eq "x-multi")',
    'any(starts_with(http.request.headers.names[*], "X-"))',
    'all(http.request.headers["x-multi"][*] ne "three")',
    'all(http.request.headers["absent"][*] eq "x")',
    'any((http.request.headers.names[*] eq "Host") or (http.request.headers.names[*] eq "nope"))',
    'any(not http.request.headers.names[*] eq "Host")',
]

FALSE_CASES = [
    'http.host eq "app.example.com"',
    'http.request.headers["absent"][0] eq "x"',
    'http.request.headers["absent"][0] ne "x"',
    'http.request.headers["x-multi"][5] eq "x"',
    "cf.waf.score lt 50",
    "cf.waf.score ne 50",
    "cf.bot_management.verified_bot",
    'ip.src.country eq "GB"',
    'http.request.body.multipart["f"][0] eq "x"',
    "ip.src lt ::1",
    "ip.src eq ::1",
    'http.host wildcard "example.com"',
    'http.host strict wildcard "app.*"',
    "ssl xor ssl",
    "false",
    'any(http.request.headers["absent"][*] eq "x")',
    'all(http.request.headers.names[*] eq "Host")',
    'any(http.request.headers.names[*] eq "a" ) and ssl',
    'http.host matches "^Example"',
    "cf.edge.server_port & 0x4",
    'decode_base64(http.host) eq ""',
    'lookup_json_string(http.request.body.raw, "a") eq "x"',
    'lookup_json_integer(substring(http.request.body.raw, 24), "a", "b", 1) eq 1',
]


@pytest.mark.parametrize("expression", TRUE_CASES)
def test_true(expression: str) -> None:
    assert run(expression) is True


@pytest.mark.parametrize("expression", FALSE_CASES)
def test_false(expression: str) -> None:
    assert run(expression) is False


def test_ne_on_missing_follows_docs_by_default_and_wirefilter_on_request() -> None:
    assert run("cf.waf.score ne 5") is False
    assert run("cf.waf.score ne 5", nil_not_equal=True) is True


def test_lists() -> None:
    lists = {"office": ["203.0.113.0/24"], "ports": [443], "hosts": ["App.Example.com"]}
    assert run("ip.src in $office", lists=lists)
    assert run("cf.edge.server_port in $ports", lists=lists)
    assert run("http.host in $hosts", lists=lists)


def test_missing_body_fields_are_missing() -> None:
    bare = RequestFields(method="GET", host="h", path="/")
    assert run("http.request.body.size eq 0", bare) is False
    assert run("not http.request.body.truncated", bare) is True
    assert run('http.request.uri eq "/"', bare)


def test_timed_hmac() -> None:
    key, message, ts = b"secret", b"/download/file", b"1700000000"
    mac = base64.b64encode(hmac.new(key, message + ts, hashlib.sha256).digest())
    request = RequestFields(
        method="GET",
        host="h",
        path="/download/file",
        query="",
        timestamp=1_700_000_100,
        headers=((b"x-token", message + ts + b"-" + mac),),
    )
    good = 'is_timed_hmac_valid_v0("secret", http.request.headers["x-token"][0], 3600, http.request.timestamp.sec)'
    assert run(good, request)
    assert not run(good.replace("3600", "10"), request)
    assert not run(good.replace('"secret"', '"other"'), request)


def test_normalize_path() -> None:
    assert normalize_path(b"/a/./b/../c/%7euser/%2f") == b"/a/c/~user/%2F"
    assert normalize_path(b"/a/..") == b"/"


def test_every_computed_field_is_in_the_scheme() -> None:
    from originlock.waf.fields import FIELD_TYPES

    assert set(FIELD_TYPES) >= KNOWN_FIELDS
