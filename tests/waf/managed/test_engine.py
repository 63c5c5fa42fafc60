"""The compiled CRS on plain values (no I/O): operators, transformations, collections, bodies, scoring."""

from __future__ import annotations

import pytest

from originlock.waf.managed import EngineConfig, HttpRequest, load_engine
from originlock.waf.managed.bodies import parse_json, parse_multipart, parse_xml, processor_for
from originlock.waf.managed.config import DEFAULT_TX
from originlock.waf.managed.loader import CRS_DIR
from originlock.waf.managed.operators import compile_operator
from originlock.waf.managed.seclang import SecLangError, parse_actions, parse_directives
from originlock.waf.managed.transforms import TRANSFORMS

BROWSER = (
    (b"Host", b"app.example.test"),
    (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"),
    (b"Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"Accept-Language", b"en-GB,en;q=0.9"),
    (b"Accept-Encoding", b"gzip, deflate, br"),
    (b"Cookie", b"session=3f9a0c; theme=dark"),
)
PL1 = EngineConfig(paranoia_level=1, threshold=5, tx=DEFAULT_TX)
PL4 = EngineConfig(paranoia_level=4, threshold=5, tx=DEFAULT_TX)


def _ids(request: HttpRequest, config: EngineConfig = PL1) -> set[int]:
    return {m.rule_id for m in load_engine().evaluate(request, config).matches}


def _post(body: bytes, content_type: bytes, target: bytes = b"/submit") -> HttpRequest:
    headers = (*BROWSER, (b"Content-Type", content_type), (b"Content-Length", str(len(body)).encode()))
    return HttpRequest(b"POST", target, b"HTTP/1.1", headers, "192.0.2.1", body)


def test_every_request_rule_compiles_once_and_is_shared() -> None:
    engine = load_engine()
    assert engine is load_engine()
    ids = {rule.id for rule in engine.rules.rules()}
    assert len(ids) > 400 and {920350, 942100, 941100, 949110, 932160} <= ids
    assert engine.rx_set.operators, "the @rx operators share one RE2 set"


def test_benign_browser_get_matches_nothing_even_at_pl4() -> None:
    request = HttpRequest(b"GET", b"/products?page=2&sort=price", b"HTTP/1.1", BROWSER, "192.0.2.1")
    assert _ids(request, PL4) == set()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/?id=1%27%20OR%20%271%27%3D%271", 942100),  # libinjection SQLi
        (b"/?q=%3Cscript%3Ealert(1)%3C/script%3E", 941100),  # libinjection XSS
        (b"/?file=../../../../etc/passwd", 930100),  # path traversal, urlDecodeUni
        (b"/?cmd=;cat%20/etc/passwd", 932160),  # @pmFromFile + cmdLine
    ],
)
def test_attacks_in_the_query_match_their_rule(target: bytes, expected: int) -> None:
    outcome = load_engine().evaluate(HttpRequest(b"GET", target, b"HTTP/1.1", BROWSER, "192.0.2.1"), PL1)
    assert expected in {m.rule_id for m in outcome.matches}
    assert outcome.score >= 5 and outcome.action == "block" and outcome.rule_id == 949110


def test_threshold_and_log_action_decide_the_outcome() -> None:
    request = HttpRequest(b"GET", b"/?q=%3Cscript%3Ealert(1)%3C/script%3E", b"HTTP/1.1", BROWSER, "192.0.2.1")
    high = EngineConfig(paranoia_level=1, threshold=1000, tx=DEFAULT_TX)
    assert load_engine().evaluate(request, high).action is None
    logged = EngineConfig(paranoia_level=1, threshold=5, actions=((949110, "log"),), tx=DEFAULT_TX)
    outcome = load_engine().evaluate(request, logged)
    assert outcome.action is None and 949110 in {m.rule_id for m in outcome.matches}
    disabled = EngineConfig(paranoia_level=1, threshold=5, disabled=frozenset({941100}), tx=DEFAULT_TX)
    assert 941100 not in {m.rule_id for m in load_engine().evaluate(request, disabled).matches}


def test_bodies_urlencoded_json_multipart_xml() -> None:
    assert 942100 in _ids(_post(b"user=1%27%20or%20%271%27%3D%271", b"application/x-www-form-urlencoded"))
    assert 941100 in _ids(_post(b'{"a": {"b": ["<script>alert(1)</script>"]}}', b"application/json"))
    multipart = (
        b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\n<script>alert(1)</script>\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="shell.php"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n<?php echo 1; ?>\r\n--XyZ--\r\n"
    )
    ids = _ids(_post(multipart, b"multipart/form-data; boundary=XyZ"))
    assert 941100 in ids and 933110 in ids  # XSS in a field, PHP upload by FILES name
    xml = b'<?xml version="1.0"?><r><a probe="&lt;script&gt;alert(1)&lt;/script&gt;"/></r>'
    assert 941100 in _ids(_post(xml, b"application/xml"))


def test_body_parsers() -> None:
    assert processor_for(b"application/json; charset=utf-8") == "JSON"
    assert processor_for(b"text/xml") == "XML" and processor_for(b"text/plain") == ""
    assert parse_json(b'{"a": [1, {"b": null}]}') == ([(b"json.a.0", b"1"), (b"json.a.1.b", b"")], False)
    assert parse_json(b"{nope")[1] is True
    body = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--'
    parts = parse_multipart(body, b"multipart/form-data; boundary=b")
    assert parts.args == [(b"x", b"1")] and parts.files == []
    text, attributes = parse_xml(b'<!DOCTYPE x [<!ENTITY e "boom">]><a k="v&#65;">t&e;&amp;</a>')
    assert attributes == [b"vA"] and text.endswith(b"t&e;&")  # no entity from a DTD is expanded


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("urldecodeuni", b"%3Cx%u0041%uff1c+", b"<xA< "),
        ("jsdecode", b"\\x41\\u0042\\n\\101", b"AB\nA"),
        ("htmlentitydecode", b"&lt;&#x41;&#66&quot;", b'<AB"'),
        ("cssdecode", b"\\3c script", b"<script"),
        ("cmdline", b"C^at  'x' ;ls /", b"cat x ls/"),
        ("normalizepath", b"/a/./b/../c//d", b"/a/c/d"),
        ("removenulls", b"a\x00b", b"ab"),
        ("replacecomments", b"a/*x*/b/*c", b"a b "),
        ("compresswhitespace", b"a \t\n b", b"a b"),
        ("utf8tounicode", "é".encode(), b"%u00e9"),
        ("base64decode", b"YWJj!!", b"abc"),
        ("length", b"abcd", b"4"),
    ],
)
def test_transformations(name: str, value: bytes, expected: bytes) -> None:
    assert TRANSFORMS[name](value) == expected


def test_operators() -> None:
    def run(text: str, value: bytes) -> bool:
        return compile_operator(text, CRS_DIR).test(value, lambda s: s) is not None

    assert run("@pm foo bar", b"xxBARxx") and not run("@pm foo bar", b"baz")
    assert run("@validateByteRange 32-126", b"a\x01") and not run("@validateByteRange 32-126", b"abc")
    assert run("@validateUrlEncoding", b"%zz") and not run("@validateUrlEncoding", b"%41")
    assert run("@validateUtf8Encoding", b"\xc3\x28") and not run("@validateUtf8Encoding", "é".encode())
    assert run("@ge 5", b"5") and run("!@eq 1", b"2") and run("@within GET POST", b"GET")
    assert run("@ipMatch 127.0.0.1,::1", b"::1") and not run("@ipMatch 10.0.0.0/8", b"192.0.2.1")
    assert compile_operator("@rx a(b)c", CRS_DIR).test(b"xabc", lambda s: s) == (b"abc", b"b")


def test_seclang_parsing_and_refusals() -> None:
    assert parse_actions("id:1,phase:2,t:none,msg:'a, b',setvar:'tx.x=+%{tx.y}'") == [
        ("id", "1"),
        ("phase", "2"),
        ("t", "none"),
        ("msg", "a, b"),
        ("setvar", "tx.x=+%{tx.y}"),
    ]
    directives = parse_directives('SecRule ARGS "@rx \\"x" \\\n    "id:1,pass"\nSecMarker END\n')
    assert [d.name for d in directives] == ["SecRule", "SecMarker"] and directives[0].args[1] == '@rx "x'
    with pytest.raises(SecLangError, match="unsupported directive SecRuleEngine"):
        parse_directives("SecRuleEngine On\n", "x.conf")
