"""Issue 10 item 3 (edge part): an Origin Rule whose SNI (or origin port) cannot be used on the wire gets an
error page and an access-log line; it never ends the request without an answer, and never closes a file
descriptor that another connection reuses (uvloop closes the socket when ``wrap_bio`` refuses the name)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.errors import OriginUnreachable
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.resolve import Resolver, getaddrinfo_lookup
from originlock.origin.server_name import server_name_error
from originlock.origin.tls import OriginTlsContexts
from originlock.pipeline.builtin.waf import EdgeWaf
from originlock.snapshot.model import Route, Snapshot, SslMode
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head
from originlock.waf import Action, Phase, RouteOverride, Rule, compile_ruleset

pytestmark = pytest.mark.slow

#: hostname prefix -> Origin Rule ``route`` parameters; every one reached the socket layer unchecked.
BAD = {
    "nul": {"sni": {"value": "a\x00b.test"}},
    "long-label": {"sni": {"value": "a" * 64 + ".test"}},
    "empty-label": {"sni": {"value": "a..test"}},
    "crlf": {"sni": {"value": "a\r\nb.test"}},
    "too-long": {"sni": {"value": "abcdefgh." * 40 + "test"}},
}
#: A Host override holding NUL is refused earlier, by the serialiser that writes the origin request (502,
#: tests/security/test_edge_framing.py), before its value would become the SNI.
BAD_HOST_HEADER = {"host-header-nul": {"host_header": "h\x00.test"}}


def _serve_ok(sock: socket.socket) -> None:
    while read_request_head(sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")


def _snapshot(pki: TestPki, extra: dict[str, dict[str, Any]]) -> Snapshot:
    routes: list[Route] = [make_route("good.example.test", "127.0.0.1", ssl_mode=SslMode.FULL, zone="good.test")]
    routes += [make_route(f"{n}.example.test", "127.0.0.1", ssl_mode=SslMode.FULL, zone=f"{n}.test") for n in extra]
    snapshot = make_snapshot(pki, *routes)
    waf = {}
    for name, params in extra.items():
        route = snapshot.routes[f"{name}.example.test"]
        # The API refuses these values where they enter (tests/security/test_api_wire_values.py); the edge must
        # still fail closed if one reaches a snapshot (an older store, a bug): compile a valid rule, then put
        # the raw value into its compiled override, past the API's check.
        rule = Rule("bad-origin-rule", "true", Action.ROUTE, action_parameters={"sni": {"value": "ok.test"}})
        ruleset = compile_ruleset(Phase.HTTP_REQUEST_ORIGIN, [rule])
        raw = RouteOverride(None, None, params.get("sni", {}).get("value"), params.get("host_header"))
        ruleset = dataclasses.replace(ruleset, rules=(dataclasses.replace(ruleset.rules[0], route=raw),))
        waf[route.zone_id] = {Phase.HTTP_REQUEST_ORIGIN: (ruleset,)}
    return dataclasses.replace(snapshot, waf=waf)


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def edge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeThread, Path]]:
    pki = TestPki()
    tmp = tmp_path_factory.mktemp("sni")
    cert, key = pki.write(tmp, "origin", pki.server("good.example.test"))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    port = free_port()
    log = tmp / "access.log"
    config = EdgeConfig(
        http=("127.0.0.1", 0), https=("127.0.0.1", 0), origin_https_port=port, access_log=str(log), loop=request.param
    )
    source = MemorySnapshotSource(_snapshot(pki, {**BAD, **BAD_HOST_HEADER}))
    with (
        ScriptedOrigin("127.0.0.1", port, _serve_ok, tls=tls),
        EdgeThread(config, source, waf=EdgeWaf(time.monotonic, time.time)) as thread,
    ):
        yield thread, log


def _get(port: int, host: str) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as sock,
    ):
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def _log_lines(log: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:  # the access log is flushed by the once-a-second tick
        lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_unusable_sni_fails_closed_with_525_and_a_log_line(edge: tuple[EdgeThread, Path]) -> None:
    thread, log = edge
    before = len(_log_lines(log, 0))
    for name in BAD:
        answer = _get(thread.https_port, f"{name}.example.test")
        assert answer.startswith(b"HTTP/1.1 525 "), (name, answer[:200])
        assert b"cannot be used" in answer  # the page tells the site owner why (a configuration problem)
        # Every bad request is answered, and the edge goes on serving (no socket of another closed).
        assert _get(thread.https_port, "good.example.test").startswith(b"HTTP/1.1 200 "), name
    for name in BAD_HOST_HEADER:
        answer = _get(thread.https_port, f"{name}.example.test")
        assert answer.startswith(b"HTTP/1.1 502 "), (name, answer[:200])
    lines = _log_lines(log, before + 2 * len(BAD) + len(BAD_HOST_HEADER))[before:]
    failures = [line for line in lines if line["status"] == 525]
    assert [line["host"] for line in failures] == [f"{n}.example.test" for n in BAD]
    assert all(line["error"] == 525 and "server name (SNI)" in line["error_detail"] for line in failures)


def test_out_of_range_origin_port_is_523_not_overflow_error() -> None:
    """The Rulesets API refuses such a port; a snapshot that has one anyway gets 523, not OverflowError."""

    async def dial() -> None:
        loop = asyncio.get_running_loop()
        resolver = Resolver(getaddrinfo_lookup(loop), time.monotonic)
        connector = Connector(loop, resolver, OriginTlsContexts(), OriginTimeouts())
        await connector.connect(OriginPeer("127.0.0.1", 70000, False, "x.test", VerifyMode.NONE))

    with pytest.raises(OriginUnreachable, match="70000"):
        asyncio.run(dial())


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("www.example.test", True),
        ("_service.example.test", True),
        ("bücher.example", True),
        ("192.0.2.1", True),
        ("2001:db8::1", True),
        ("example.test.", True),
        ("a" * 63 + ".test", True),
        ("a" * 64 + ".test", False),
        ("-lead.test", False),
        ("a b.test", False),
        ("a\x00b", False),
        ("", False),
        ("a." * 127 + "test", False),
    ],
)
def test_server_name_check(name: str, ok: bool) -> None:
    assert (server_name_error(name) is None) is ok
