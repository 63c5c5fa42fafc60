"""A real edge in front of a real nginx origin that logs every request it receives, for framing tests.

Visitors are raw sockets (plain TCP or TLS) sending exact bytes; the origin is nginx, which parses requests
strictly itself, so a request smuggled past the edge shows up as an extra line in its access log. Zones:

- ``www.a.test`` (zone a.test, Flexible): a WAF custom rule blocks ``starts_with(http.request.uri.path,
  "/admin")``;
- ``www.d.test`` (zone d.test, Flexible), no rules; ``mtls.d.test`` (Full) pulls over TLS from an nginx
  server that requires the edge's client certificate;
- ``big.d.test`` (Flexible) pulls from a scripted origin (fault injection) whose response head is 140 KB,
  sent in one write;
- ``inject.e.test`` (zone e.test, Flexible): its Origin Rule sets a ``host_header`` holding CR/LF, as if a
  value had slipped past the API's validation (injected below the API: the API refuses it).

All plain-HTTP zones share the origin address, so they share pooled origin connections, as tenants do.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.origin.connector import OriginTimeouts
from originlock.pipeline.builtin.waf import EdgeWaf
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import CONTINUE, Decision, Respond
from originlock.proto.events import RequestReceived
from originlock.snapshot.model import SslMode
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.require import require_executable
from originlock.testing.scripted_origin import ScriptedOrigin, read_request_head
from originlock.waf import Action, Phase, RouteOverride, Rule, compile_ruleset

__all__ = ["SMUGGLE_HOST", "Env", "Response", "framing_env"]

#: The Origin Rule value of issue 10 item 3.
SMUGGLE_HOST = "www.a.test\r\n\r\nGET /SMUGGLED HTTP/1.1\r\nHost: www.a.test\r\n\r\n"
ECHO = 'return 200 "uri=$request_uri host=$host te=$http_transfer_encoding trailer=$http_x_trailer_injected\\n";'
LOG = "log_format framing '$server_port|$request|$http_host|$http_x_trailer_injected|$http_content_length';"


#: A scripted origin's address (same deployment-wide origin port as nginx, another loopback address).
BIG_HEAD_ORIGIN = "127.0.0.40"


def big_head(sock: socket.socket) -> None:
    """Answers every request with a 140 KB response head in one write (issue 10 item 13)."""
    while read_request_head(sock):
        fields = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1000) for i in range(140))
        sock.sendall(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 2\r\n\r\nok")


class InjectingWaf:
    """The real WAF hook, plus an Origin Rule override with CR/LF for zone e.test (fault injection)."""

    def __init__(self) -> None:
        self.waf = EdgeWaf(time.monotonic, time.time)

    def __call__(self, request: RequestReceived, ctx: RequestContext) -> Decision:
        if ctx.host == "inject.e.test":
            if request.target.endswith(b"/respond"):  # a custom response whose field would split the head
                return Respond(403, [(b"X-Note", b"a\r\nSet-Cookie: injected=1")], b"blocked\n")
            ctx.origin_override = RouteOverride(host_header=SMUGGLE_HOST)
            return CONTINUE
        return self.waf(request, ctx)


@dataclass
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


@dataclass
class OriginLine:
    port: int
    request: str
    host: str
    trailer: str
    content_length: str


class Env:
    def __init__(self, work: Path, pki: TestPki, edge: EdgeThread, http_port: int, https_port: int) -> None:
        self.work = work
        self.pki = pki
        self.edge = edge
        self.origin_http_port = http_port
        self.origin_https_port = https_port
        self.visitor_tls = ssl.create_default_context(cafile=str(work / "edge-ca.pem"))

    @contextmanager
    def visitor(self, host: str, *, tls: bool, timeout: float = 5.0) -> Iterator[socket.socket]:
        """A visitor connection to the edge (TLS with SNI ``host``, or plain TCP)."""
        port = self.edge.https_port if tls else self.edge.http_port
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            sock = self.visitor_tls.wrap_socket(sock, server_hostname=host)
        try:
            yield sock
        finally:
            sock.close()

    def origin_lines(self) -> list[OriginLine]:
        path = self.work / "origin.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        out = []
        for line in lines:
            port, request, host, trailer, length = line.split("|")
            out.append(OriginLine(int(port), request, host, trailer, length))
        return out

    def origin_saw(self, marker: str, *, expect: int = 0, timeout: float = 2.0) -> list[OriginLine]:
        """The origin's log lines whose request line contains ``marker``. Waits up to ``timeout`` for
        ``expect`` of them (nginx logs after answering), then a moment longer for any extra one."""
        deadline = time.monotonic() + timeout
        while True:
            seen = [line for line in self.origin_lines() if marker in line.request]
            if len(seen) >= expect or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        time.sleep(0.05)
        return [line for line in self.origin_lines() if marker in line.request]


def read_response(sock: socket.socket, buffer: bytearray, *, head_request: bool = False) -> Response | None:
    """One response from ``sock`` (``buffer`` keeps bytes read past it); None at EOF before any byte."""
    while b"\r\n\r\n" not in buffer:
        piece = sock.recv(65536)
        if not piece:
            if buffer:
                raise AssertionError(f"connection closed inside a response head: {bytes(buffer)!r}")
            return None
        buffer += piece
    end = buffer.index(b"\r\n\r\n")
    head = bytes(buffer[:end])
    del buffer[: end + 4]
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if head_request or status in (100, 204, 304):
        return Response(status, headers, b"")
    if headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            while b"\r\n" not in buffer:
                buffer += _recv(sock)
            size_end = buffer.index(b"\r\n")
            size = int(bytes(buffer[:size_end]).split(b";")[0], 16)
            while len(buffer) < size_end + 2 + size + 2:
                buffer += _recv(sock)
            body += bytes(buffer[size_end + 2 : size_end + 2 + size])
            del buffer[: size_end + 2 + size + 2]
            if size == 0:
                return Response(status, headers, body)
    length = int(headers.get(b"content-length", b"0"))
    while len(buffer) < length:
        buffer += _recv(sock)
    body = bytes(buffer[:length])
    del buffer[:length]
    return Response(status, headers, body)


def _recv(sock: socket.socket) -> bytes:
    piece = sock.recv(65536)
    if not piece:
        raise AssertionError("connection closed inside a response body")
    return piece


def read_responses(sock: socket.socket, count: int) -> tuple[list[Response], bool]:
    """Up to ``count`` responses, and whether the edge then closed the connection (checked only when it
    sent fewer, or by a short wait after the last one)."""
    buffer = bytearray()
    out: list[Response] = []
    while len(out) < count:
        response = read_response(sock, buffer)
        if response is None:
            return out, True
        out.append(response)
    assert not buffer, f"bytes after the expected responses: {bytes(buffer)!r}"
    return out, False


def wait_closed(sock: socket.socket, timeout: float = 3.0) -> bool:
    """Whether the edge closes ``sock`` (EOF, or reset) within ``timeout`` without sending anything more."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False
    assert data == b"", f"unexpected bytes from the edge: {data!r}"
    return True


@contextmanager
def framing_env(work: Path) -> Iterator[Env]:
    nginx_bin = require_executable("nginx")
    pki = TestPki()
    (work / "edge-ca.pem").write_text(pki.edge_ca.cert_pem)
    cert, key = pki.write(work, "origin", pki.server("origin.test", "*.d.test", "127.0.0.1"))
    trusted = work / "origin-pull-ca.pem"
    trusted.write_text(pki.origin_pull_ca.cert_pem)
    http_port, https_port = free_port(), free_port()
    block = (
        f"{LOG}\n"
        f"server {{ listen 127.0.0.1:{http_port}; access_log {work}/origin.log framing; "
        f"location / {{ {ECHO} }} }}\n"
        f"server {{ listen 127.0.0.1:{https_port} ssl; ssl_certificate {cert}; ssl_certificate_key {key}; "
        f"ssl_client_certificate {trusted}; ssl_verify_client on; access_log {work}/origin.log framing; "
        f"location / {{ {ECHO} }} }}\n"
    )
    nginx = NginxProcess(nginx_bin, work / "nginx", block, ports=[http_port, https_port]).start()
    flex = SslMode.FLEXIBLE
    a = make_route("www.a.test", ssl_mode=flex, zone="a.test")
    snapshot = make_snapshot(
        pki,
        a,
        make_route("www.d.test", ssl_mode=flex, zone="d.test"),
        make_route("mtls.d.test", ssl_mode=SslMode.FULL, client_cert=pki.global_client, zone="d.test"),
        make_route("inject.e.test", ssl_mode=flex, zone="e.test"),
        make_route("big.d.test", BIG_HEAD_ORIGIN, ssl_mode=flex, zone="d.test"),
    )
    block_admin = Rule("block-admin", 'starts_with(http.request.uri.path, "/admin")', Action.BLOCK)
    custom = Phase.HTTP_REQUEST_FIREWALL_CUSTOM
    snapshot = dataclasses.replace(snapshot, waf={a.zone_id: {custom: (compile_ruleset(custom, [block_admin]),)}})
    config = EdgeConfig(
        http=("127.0.0.1", 0),
        https=("127.0.0.1", 0),
        origin_http_port=http_port,
        origin_https_port=https_port,
        origin_timeouts=OriginTimeouts(connect=2.0, handshake=2.0, read=3.0, write=3.0),
        idle_timeout=30.0,  # longer than any test waits: a hang fails the test rather than ending quietly
        header_timeout=10.0,
    )
    scripted = ScriptedOrigin(BIG_HEAD_ORIGIN, http_port, big_head)
    try:
        with scripted, EdgeThread(config, MemorySnapshotSource(snapshot), waf=InjectingWaf()) as edge:
            yield Env(work, pki, edge, http_port, https_port)
    finally:
        nginx.stop()


def request_line(method: str, marker: str, host: str, extra: str = "", version: str = "1.1") -> bytes:
    return f"{method} /{marker} HTTP/{version}\r\nHost: {host}\r\n{extra}\r\n".encode()


def uri_of(response: Response) -> str:
    match = re.search(rb"uri=(\S*)", response.body)
    return match.group(1).decode() if match else ""
