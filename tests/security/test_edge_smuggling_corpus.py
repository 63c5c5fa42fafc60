"""A corpus of request-framing cases sent as raw bytes through the real edge to a real nginx origin (plain
HTTP pulls for TCP visitors, mTLS pulls for TLS visitors): the origin must see exactly the requests it
should, and the visitor exactly the answers it should, never a request or a response smuggled in between.

Each case's bytes carry a marker in every path; what follows a refused request is a request for
``/<marker>/SMUGGLED``. A connection the edge keeps open is probed with one more request (its answer must be
the next thing the visitor reads); one the edge closes must close without another byte.
"""

# The corpus is a table, one case per line: long lines read better than wrapped ones here.
# ruff: noqa: E501

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .framing_env import Env, framing_env, read_responses, uri_of, wait_closed

pytestmark = pytest.mark.slow

SMUGGLED = "GET /{m}/SMUGGLED HTTP/1.1\r\nHost: {h}\r\n\r\n"
#: A request carried inside a body (fixed bytes, so that its length is known).
INNER = "GET /zz/SMUGGLED HTTP/1.1\r\nHost: www.d.test\r\n\r\n"


@dataclass(frozen=True)
class Case:
    id: str
    raw: str
    #: Statuses the visitor gets, in order.
    statuses: tuple[int, ...]
    #: Paths (under the marker) the origin receives, in order.
    origin: tuple[str, ...] = ()
    #: The edge closes the connection after these answers.
    closes: bool = False
    #: The origin may also log the first request cut short (the edge forwards a streamed body's start before
    #: the visitor's framing error arrives in a later read; never a request that was not sent).
    cut_ok: bool = False


def head(method: str, extra: str = "", path: str = "a", version: str = "1.1") -> str:
    return f"{method} /{{m}}/{path} HTTP/{version}\r\nHost: {{h}}\r\n{extra}\r\n"


CORPUS = [
    # Well-formed traffic, pipelined, with bodies: everything reaches the origin once, in order.
    Case("plain", head("GET"), (200,), ("a",)),
    Case("pipelined", head("GET") + head("GET", path="b") + head("DELETE", path="c"), (200, 200, 200), ("a", "b", "c")),
    Case("cl-body", head("POST", "Content-Length: 5\r\n") + "hello" + head("GET", path="b"), (200, 200), ("a", "b")),
    Case("cl-zero", head("POST", "Content-Length: 0\r\n") + head("GET", path="b"), (200, 200), ("a", "b")),
    Case("get-with-body", head("GET", "Content-Length: 3\r\n") + "abc" + head("GET", path="b"), (200, 200), ("a", "b")),
    Case("chunked", head("POST", "Transfer-Encoding: chunked\r\n") + "3\r\nabc\r\n0\r\n\r\n", (200,), ("a",)),
    Case("chunked-case", head("POST", "transfer-encoding: CHUNKED\r\n") + "3\r\nabc\r\n0\r\n\r\n", (200,), ("a",)),
    Case("chunk-ext", head("POST", "Transfer-Encoding: chunked\r\n") + "3;x=y\r\nabc\r\n0\r\n\r\n", (200,), ("a",)),
    # A request inside a body is body, not a request.
    Case("request-in-chunk", head("POST", "Transfer-Encoding: chunked\r\n") + f"{len(INNER) + 5:x}\r\n0\r\n\r\n{INNER}\r\n0\r\n\r\n", (200,), ("a",)),
    Case("request-in-length", head("POST", f"Content-Length: {len(INNER)}\r\n") + INNER, (200,), ("a",)),
    # Trailers are dropped, never the next request's fields (item 4); llhttp refuses framing fields there.
    Case(
        "trailer",
        head("POST", "Transfer-Encoding: chunked\r\n") + "0\r\nX-Trailer-Injected: yes\r\n\r\n" + head("GET", path="b"),
        (200, 200),
        ("a", "b"),
    ),
    Case(
        "trailer-framing",
        head("POST", "Transfer-Encoding: chunked\r\n") + "0\r\nContent-Length: 60\r\n\r\n" + head("GET", path="b"),
        (400,),
        closes=True,
        cut_ok=True,
    ),
    # Content-Length together with Transfer-Encoding, in every spelling (RFC 9112 §6.3).
    Case("cl-te", head("POST", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("te-cl", head("POST", "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("te_-cl", head("POST", "Transfer_Encoding: chunked\r\nContent-Length: 5\r\n") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("te-cl_", head("POST", "Transfer-Encoding: chunked\r\nContent_Length: 50\r\n") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("cl-cl", head("POST", "Content-Length: 5\r\nContent-Length: 6\r\n") + "hello!" + SMUGGLED, (400,), closes=True),
    Case("cl-list", head("POST", "Content-Length: 5, 5\r\n") + "hello" + SMUGGLED, (400,), closes=True),
    Case("te-te", head("POST", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("te-fold", head("POST", "Transfer-Encoding:\r\n chunked\r\n") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("te-space-colon", head("POST", "Transfer-Encoding : chunked\r\n") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("te-vtab", head("POST", "Transfer-Encoding:\x0bchunked\r\n") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("te-chunked-gzip", head("POST", "Transfer-Encoding: chunked, gzip\r\n") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    # Transfer codings other than chunked: 501 as nginx, never forwarded as chunked (item 14).
    Case("te-gzip-chunked", head("POST", "Transfer-Encoding: gzip, chunked\r\n") + "0\r\n\r\n" + SMUGGLED, (501,), closes=True),
    Case("te-xchunked", head("POST", "Transfer-Encoding: xchunked\r\n") + "0\r\n\r\n" + SMUGGLED, (501,), closes=True),
    Case("te-identity", head("POST", "Transfer-Encoding: identity\r\n") + SMUGGLED, (501,), closes=True),
    # Transfer-Encoding in HTTP/1.0 is faulty framing (RFC 9112 §6.1).
    Case("te-http10", head("POST", "Transfer-Encoding: chunked\r\n", version="1.0") + "0\r\n\r\n" + SMUGGLED, (400,), closes=True),
    # Content-Length values nginx refuses (item 14) or that are not a length; trailing spaces are trimmed.
    Case("cl-tab", head("POST", "Content-Length: 5\t\r\n") + "hello" + SMUGGLED, (400,), closes=True),
    Case("cl-plus", head("POST", "Content-Length: +5\r\n") + "hello" + SMUGGLED, (400,), closes=True),
    Case("cl-negative", head("POST", "Content-Length: -1\r\n") + SMUGGLED, (400,), closes=True),
    Case("cl-hex", head("POST", "Content-Length: 0x5\r\n") + "hello" + SMUGGLED, (400,), closes=True),
    Case("cl-space", head("POST", "Content-Length: 5  \r\n") + "hello" + head("GET", path="b"), (200, 200), ("a", "b")),
    # Broken chunked bodies: the connection ends there.
    Case("chunk-size-bad", head("POST", "Transfer-Encoding: chunked\r\n") + "zz\r\n" + SMUGGLED, (400,), closes=True, cut_ok=True),
    Case("chunk-size-huge", head("POST", "Transfer-Encoding: chunked\r\n") + "f" * 20 + "\r\n" + SMUGGLED, (400,), closes=True, cut_ok=True),
    Case("chunk-no-crlf", head("POST", "Transfer-Encoding: chunked\r\n") + "3\r\nabcX0\r\n\r\n" + SMUGGLED, (400,), closes=True, cut_ok=True),
    Case("chunk-bare-lf", head("POST", "Transfer-Encoding: chunked\r\n") + "3\nabc\r\n0\r\n\r\n" + SMUGGLED, (400,), closes=True, cut_ok=True),
    # Line endings and bytes that would split a field (RFC 9112 §2.2, §5).
    Case("bare-lf", "GET /{m}/a HTTP/1.1\nHost: {h}\n\n" + SMUGGLED, (400,), closes=True),
    Case("bare-cr", head("GET", "X: a\rGET /{m}/SMUGGLED HTTP/1.1\r\n") + SMUGGLED, (400,), closes=True),
    Case("nul", head("GET", "X: a\x00b\r\n") + SMUGGLED, (400,), closes=True),
    Case("fold", head("GET", "X: a\r\n b\r\n") + SMUGGLED, (400,), closes=True),
    Case("name-space", head("GET", "X Y: a\r\n") + SMUGGLED, (400,), closes=True),
    # Request shapes nginx answers 400 (item 14).
    Case("connection-host", head("GET", "Connection: Host\r\n") + SMUGGLED, (400,), closes=True),
    Case("xff_", head("GET", "X_Forwarded_For: 203.0.113.9\r\n") + SMUGGLED, (400,), closes=True),
    Case("connect", "CONNECT {h}:443 HTTP/1.1\r\nHost: {h}:443\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("options-star", "OPTIONS * HTTP/1.1\r\nHost: {h}\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("h2-preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("abs-no-host", "GET http://{h}/{m}/a HTTP/1.1\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("two-hosts", head("GET", "Host: other.test\r\n") + SMUGGLED, (400,), closes=True),
    Case("host-userinfo", "GET /{m}/a HTTP/1.1\r\nHost: user@{h}\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("expect-other", head("POST", "Expect: 200-ok\r\nContent-Length: 1\r\n") + "x" + SMUGGLED, (400,), closes=True),
    Case("http09", "GET /{m}/a\r\n\r\n" + SMUGGLED, (400,), closes=True),
    Case("http12", head("GET", version="1.2") + SMUGGLED, (400,), closes=True),
    Case("http2", head("GET", version="2.0") + SMUGGLED, (400,), closes=True),
    # llhttp reads runs of spaces in the request line as one (RFC 9112 §3 allows it); the edge writes its own.
    Case("request-line-spaces", "GET  /{m}/a  HTTP/1.1\r\nHost: {h}\r\n\r\n", (200,), ("a",)),
    Case("big-head", head("GET", "X: " + "a" * 40000 + "\r\n") + SMUGGLED, (431,), closes=True),
    # Absolute-form: resolved to origin-form with the authority as Host (item 5).
    Case("abs-form", "GET http://{h}/{m}/a HTTP/1.1\r\nHost: other.test\r\n\r\n", (200,), ("a",)),
    Case("abs-http10", "GET http://{h}/{m}/a HTTP/1.0\r\n\r\n" + SMUGGLED, (200,), ("a",), closes=True),
    Case("fragment", "GET /{m}/a#/../../SMUGGLED HTTP/1.1\r\nHost: {h}\r\n\r\n", (200,), ("a",)),
    # What follows a request that closes the connection is ignored (item 15); after an error it is too.
    Case("close", head("GET", "Connection: close\r\n") + SMUGGLED, (200,), ("a",), closes=True),
    Case("http10", head("GET", version="1.0") + SMUGGLED, (200,), ("a",), closes=True),
    Case("http10-keep-alive", head("GET", "Connection: keep-alive\r\n", version="1.0") + head("GET", path="b"), (200, 200), ("a", "b")),
    Case("upgrade", head("GET", "Upgrade: websocket\r\nConnection: Upgrade\r\n") + SMUGGLED, (200,), ("a",), closes=True),
    Case("valid-then-bad", head("GET") + "GET /{m}/b HTTP/1.1\r\nHost: {h}\r\nX: \x01\r\n\r\n" + SMUGGLED, (200, 400), ("a",), closes=True),
]  # fmt: skip

TRANSPORTS = [pytest.param((True, "mtls.d.test"), id="tls"), pytest.param((False, "www.d.test"), id="tcp")]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with framing_env(tmp_path_factory.mktemp("corpus")) as env:
        yield env


def test_the_corpus_has_unique_ids_and_covers_refusals() -> None:
    assert len({case.id for case in CORPUS}) == len(CORPUS) >= 60
    assert sum(1 for case in CORPUS if case.statuses[-1] >= 400) >= 40


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_no_request_is_smuggled(env: Env, transport: tuple[bool, str], case: Case) -> None:
    tls, host = transport
    marker = f"{case.id}-{'tls' if tls else 'tcp'}"
    data = case.raw.replace("{m}", marker).replace("{h}", host).encode("latin-1")
    with env.visitor(host, tls=tls) as sock:
        sock.sendall(data)
        responses, closed = read_responses(sock, len(case.statuses))
        assert tuple(r.status for r in responses) == case.statuses, [r.body[:300] for r in responses]
        served = [uri_of(r) for r in responses if r.status == 200]
        assert served == [f"/{marker}/{path}" for path in case.origin]
        if case.closes:
            assert closed or wait_closed(sock), "the edge kept the connection open"
        else:
            assert not closed
            sock.sendall(f"GET /{marker}/probe HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            (probe,), _ = read_responses(sock, 1)
            assert probe.status == 200 and uri_of(probe) == f"/{marker}/probe"
    expected = [*case.origin] if case.closes else [*case.origin, "probe"]
    seen = env.origin_saw(f"/{marker}/", expect=len(expected))
    paths = [line.request.split()[1].split(f"/{marker}/", 1)[1] for line in seen]
    ports = {line.port for line in seen}
    assert ports <= {env.origin_https_port if tls else env.origin_http_port}
    if case.cut_ok and paths == ["a"]:
        paths = []
    assert paths == expected
    assert not [line for line in env.origin_lines() if "/zz/SMUGGLED" in line.request]  # INNER, from any case
