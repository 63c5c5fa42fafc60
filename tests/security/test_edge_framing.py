"""Issue 10's HTTP framing and request-shape attacks, as the issue sends them, against a real edge in front
of a real nginx origin (plus issue 12's empty chunked request, with real curl). Every test asserts both the
visitor's answer and what the origin received."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from originlock.testing.require import require_executable

from .framing_env import Env, framing_env, read_responses, request_line, uri_of, wait_closed

pytestmark = pytest.mark.slow

TRANSPORTS = [pytest.param(True, id="tls"), pytest.param(False, id="tcp")]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with framing_env(tmp_path_factory.mktemp("framing")) as env:
        yield env


def _tag(tls: bool) -> str:
    return "tls" if tls else "tcp"


# -- item 3: CR/LF in an Origin Rule's host_header -------------------------------------------------------


@pytest.mark.parametrize("tls", TRANSPORTS)
def test_origin_rule_host_header_with_crlf_is_refused_and_never_reaches_the_origin(env: Env, tls: bool) -> None:
    marker = f"i3-{_tag(tls)}"
    with env.visitor("inject.e.test", tls=tls) as sock:
        sock.sendall(request_line("GET", f"{marker}/first", "inject.e.test"))
        (refused,), _ = read_responses(sock, 1)
    assert refused.status == 502 and b"CR, LF or NUL" in refused.body
    # The next visitor, of another zone sharing the origin address (and its pooled connections), gets its
    # own response, and the origin never saw the injected request.
    for _ in range(3):
        with env.visitor("www.d.test", tls=tls) as sock:
            sock.sendall(request_line("GET", f"{marker}/after", "www.d.test"))
            (after,), _ = read_responses(sock, 1)
        assert after.status == 200 and uri_of(after) == f"/{marker}/after" and b"host=www.d.test" in after.body
    assert env.origin_saw(f"{marker}/first") == []
    assert [line.host for line in env.origin_saw(f"{marker}/after", expect=3)] == ["www.d.test"] * 3
    assert not [line for line in env.origin_lines() if "SMUGGLED" in line.request]


def test_a_local_response_with_crlf_in_a_field_becomes_a_502_page(env: Env) -> None:
    with env.visitor("inject.e.test", tls=True) as sock:
        sock.sendall(request_line("GET", "i3-local/respond", "inject.e.test"))
        (response,), _ = read_responses(sock, 1)
        assert response.status == 502 and b"set-cookie" not in response.headers and b"x-note" not in response.headers
        sock.sendall(request_line("GET", "i3-local/next", "inject.e.test"))  # the head stayed whole: still in step
        (following,), _ = read_responses(sock, 1)
        assert following.status == 502
    assert env.origin_saw("i3-local") == []


# -- item 4: chunked trailers ------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", TRANSPORTS)
def test_chunked_trailers_are_not_merged_into_the_next_request(env: Env, tls: bool) -> None:
    marker = f"i4-{_tag(tls)}"
    data = (
        f"POST /{marker}/first HTTP/1.1\r\nHost: www.d.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        f"0\r\nX-Trailer-Injected: yes\r\n\r\nGET /{marker}/second HTTP/1.1\r\nHost: www.d.test\r\n\r\n"
    ).encode()
    with env.visitor("www.d.test", tls=tls) as sock:
        sock.sendall(data)
        responses, _ = read_responses(sock, 2)
    assert [(r.status, uri_of(r)) for r in responses] == [(200, f"/{marker}/first"), (200, f"/{marker}/second")]
    assert b"trailer=\n" in responses[1].body
    seen = env.origin_saw(marker, expect=2)
    assert [(line.request.split()[1], line.trailer) for line in seen] == [
        (f"/{marker}/first", "-"),
        (f"/{marker}/second", "-"),
    ]


# -- item 5: absolute-form target vs Host ----------------------------------------------------------------------


@pytest.mark.parametrize("tls", TRANSPORTS)
def test_absolute_form_authority_replaces_host_for_routing_waf_and_origin(env: Env, tls: bool) -> None:
    marker = f"i5-{_tag(tls)}"
    with env.visitor("www.a.test", tls=tls) as sock:
        # Routed to d.test: the origin must receive d.test's Host, not a.test's (it got www.a.test).
        sock.sendall(f"GET http://www.d.test/admin/{marker} HTTP/1.1\r\nHost: www.a.test\r\n\r\n".encode())
        # The other way round, a.test's /admin block rule applies.
        sock.sendall(f"GET http://www.a.test/admin/{marker}-b HTTP/1.1\r\nHost: www.d.test\r\n\r\n".encode())
        (routed, blocked), _ = read_responses(sock, 2)
    assert routed.status == 200 and b"host=www.d.test" in routed.body and uri_of(routed) == f"/admin/{marker}"
    assert blocked.status == 403 and b"1020" in blocked.body
    assert [line.host for line in env.origin_saw(marker, expect=1)] == ["www.d.test"]
    with env.visitor("www.d.test", tls=tls) as sock:  # RFC 9112 §3.2, nginx: HTTP/1.1 needs Host anyway
        sock.sendall(f"GET http://www.d.test/{marker}-nohost HTTP/1.1\r\n\r\n".encode())
        (no_host,), _ = read_responses(sock, 1)
        assert no_host.status == 400 and wait_closed(sock)
    assert env.origin_saw(f"{marker}-nohost") == []


# -- item 6: path normalisation before the WAF ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "//admin/",
        "///admin/index.html",
        "/x\\..\\admin",
        "/%61dmin/",
        "/./admin",
        "/x/../admin",
        "/%2e%2e/admin",
    ],
)
def test_spellings_of_admin_are_blocked_and_never_reach_the_origin(env: Env, path: str) -> None:
    marker = f"i6-{abs(hash(path)) % 10**6}"
    with env.visitor("www.a.test", tls=True) as sock:
        sock.sendall(f"GET {path}?{marker} HTTP/1.1\r\nHost: www.a.test\r\n\r\n".encode())
        (response,), _ = read_responses(sock, 1)
    assert response.status == 403, (path, response.body[:200])
    assert env.origin_saw(marker) == []


@pytest.mark.parametrize("path", ["/x/..%2Fadmin", "/x/..%5cadmin", "/static/..%2f../admin", "/%2Fadmin"])
def test_encoded_slashes_that_would_form_dot_segments_are_400(env: Env, path: str) -> None:
    """``%2F`` is reserved (Cloudflare keeps it), but nginx decodes it: ``/x/..%2Fadmin`` is ``/admin`` there."""
    marker = f"i6e-{abs(hash(path)) % 10**6}"
    with env.visitor("www.a.test", tls=True) as sock:
        sock.sendall(f"GET {path}?{marker} HTTP/1.1\r\nHost: www.a.test\r\n\r\n".encode())
        (response,), _ = read_responses(sock, 1)
        assert response.status == 400 and wait_closed(sock)
    assert env.origin_saw(marker) == []


def test_the_origin_receives_the_normalised_path(env: Env) -> None:
    with env.visitor("www.a.test", tls=True) as sock:
        sock.sendall(b"GET //public//i6n/./x/../%79\\z?q=//a/../b HTTP/1.1\r\nHost: www.a.test\r\n\r\n")
        (response,), _ = read_responses(sock, 1)
    assert response.status == 200 and uri_of(response) == "/public/i6n/y/z?q=//a/../b"
    assert [line.request for line in env.origin_saw("i6n", expect=1)] == ["GET /public/i6n/y/z?q=//a/../b HTTP/1.1"]


# -- item 15: a request pipelined after one that closes ------------------------------------------------------


@pytest.mark.parametrize("tls", TRANSPORTS)
@pytest.mark.parametrize(("version", "extra"), [("1.1", "Connection: close\r\n"), ("1.0", "")])
def test_a_request_pipelined_after_close_is_ignored_and_the_first_served(
    env: Env, tls: bool, version: str, extra: str
) -> None:
    marker = f"i15-{_tag(tls)}-{version}"
    with env.visitor("www.d.test", tls=tls) as sock:
        sock.sendall(
            request_line("GET", f"{marker}/first", "www.d.test", extra, version)
            + request_line("GET", f"{marker}/SMUGGLED", "www.d.test")
        )
        responses, _ = read_responses(sock, 1)
        assert [(r.status, uri_of(r)) for r in responses] == [(200, f"/{marker}/first")]
        assert wait_closed(sock)
    assert [line.request.split()[1] for line in env.origin_saw(marker, expect=1)] == [f"/{marker}/first"]


# -- issue 12: empty chunked request bodies, HTTP/1.0 chunked -------------------------------------------------


def test_curl_empty_chunked_post_is_answered_at_once(env: Env) -> None:
    """``curl -X POST -H 'Transfer-Encoding: chunked' --data-binary @/dev/null`` waited for the idle timeout."""
    curl = require_executable("curl")
    port = env.edge.https_port
    started = time.monotonic()
    out = subprocess.run(
        [curl, "-sS", "--max-time", "5", "--cacert", str(env.work / "edge-ca.pem"), "--resolve",
         f"www.d.test:{port}:127.0.0.1", "-X", "POST", "-H", "Transfer-Encoding: chunked",
         "--data-binary", "@/dev/null", f"https://www.d.test:{port}/i12-curl"],
        capture_output=True, timeout=20,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"uri=/i12-curl host=www.d.test te=chunked")
    assert time.monotonic() - started < 3
    assert len(env.origin_saw("i12-curl", expect=1)) == 1


@pytest.mark.parametrize("tls", TRANSPORTS)
@pytest.mark.parametrize("pause", [0.0, 0.1])
def test_empty_chunked_body_in_one_or_several_reads(env: Env, tls: bool, pause: float) -> None:
    marker = f"i12-{_tag(tls)}-{pause}"
    head = f"POST /{marker} HTTP/1.1\r\nHost: www.d.test\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    with env.visitor("www.d.test", tls=tls, timeout=3) as sock:
        if pause:
            sock.sendall(head)
            time.sleep(pause)
            sock.sendall(b"0\r\n")
            time.sleep(pause)
            sock.sendall(b"\r\n")
        else:
            sock.sendall(head + b"0\r\n\r\n")
        (response,), _ = read_responses(sock, 1)  # a hang times out here (3 s)
        assert response.status == 200 and uri_of(response) == f"/{marker}"
        sock.sendall(request_line("GET", f"{marker}-next", "www.d.test"))  # the connection is still usable
        (following,), _ = read_responses(sock, 1)
        assert following.status == 200 and uri_of(following) == f"/{marker}-next"


@pytest.mark.parametrize("tls", TRANSPORTS)
@pytest.mark.parametrize("pause", [0.0, 0.1])
def test_http_1_0_chunked_request_is_400_and_closed(env: Env, tls: bool, pause: float) -> None:
    marker = f"i12-10-{_tag(tls)}-{pause}"
    head = f"POST /{marker} HTTP/1.0\r\nHost: www.d.test\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    with env.visitor("www.d.test", tls=tls, timeout=3) as sock:
        sock.sendall(head)
        if pause:
            time.sleep(pause)
        sock.sendall(b"5\r\nhello\r\n0\r\n\r\n")
        (response,), _ = read_responses(sock, 1)
        assert response.status == 400 and wait_closed(sock)
    assert env.origin_saw(marker) == []


# -- item 13: the origin's response head limit ---------------------------------------------------------------


def test_an_origin_response_head_over_128_kib_in_one_read_is_520(env: Env) -> None:
    with env.visitor("big.d.test", tls=True) as sock:
        sock.sendall(request_line("GET", "i13", "big.d.test"))
        (response,), _ = read_responses(sock, 1)
    assert response.status == 520 and b"X-Big" not in response.body
