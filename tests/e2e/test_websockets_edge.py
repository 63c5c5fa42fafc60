"""WebSockets through `originlock serve`'s edge to a real WebSocket origin that requires the edge's client
certificate (the `websockets` library on both ends; the zone certificate uploaded through the SDK).

The origin records what it saw per request (path, Upgrade field, the client certificate's fingerprint and
subject, how the connection ended), so "the origin never saw it" and "the edge presented this certificate"
are checked on the origin's side.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudflare import Cloudflare
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from originlock.testing.require import require_or_skip
from originlock.testing.serve import ServeProcess, free_port, start_serve
from originlock.testing.upload_pki import UploadPki, leaf_pems

ON, OFF = "ws.test", "wsoff.test"
#: --websocket-idle-timeout for this edge. A visitor that does not read stalls both directions, which the idle
#: timeout counts as idle (no byte moved): the backpressure test's pause must stay well under it.
IDLE = 3.0
BACKPRESSURE_PAUSE = IDLE / 2
FLOOD_MESSAGES, MESSAGE = 48, 1024 * 1024
CHROMIUM = "/usr/bin/chromium"
#: What the browser loads through the edge: the protocol the page came over, then a WebSocket echo through
#: the edge to the same origin.
PAGE = """<!doctype html><html><body>
<p id="protocol"></p><p id="echo">waiting</p>
<script>
document.getElementById("protocol").textContent = performance.getEntriesByType("navigation")[0].nextHopProtocol;
const ws = new WebSocket("wss://" + location.host + "/echo");
ws.onopen = () => ws.send("hello through the edge");
ws.onmessage = (e) => { document.getElementById("echo").textContent = "echo: " + e.data; ws.close(); };
ws.onerror = () => { document.getElementById("echo").textContent = "websocket error"; };
</script></body></html>
"""


@dataclass
class Seen:
    path: str
    upgrade: str | None
    fingerprint: str
    subject: str
    close_code: int | None = None
    events: list[tuple[str, float]] = field(default_factory=list)


class WsOrigin:
    """A `websockets` server with ``CERT_REQUIRED`` (trusting only the uploaded CA) in its own thread."""

    def __init__(self, work: Path, pki: UploadPki) -> None:
        server = pki.server("origin.ws.test", sans=("127.0.0.1",))
        (work / "origin.pem").write_text(server.cert_pem)
        (work / "origin.key").write_bytes(server.key_pem)
        (work / "ca.pem").write_text(pki.ca.cert_pem)
        self.ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl.load_cert_chain(work / "origin.pem", work / "origin.key")
        self.ssl.verify_mode = ssl.CERT_REQUIRED
        self.ssl.load_verify_locations(work / "ca.pem")
        self.port = free_port()
        #: The same handlers without TLS: where the edge pulls plain-HTTP visitors' requests in Full mode.
        self.plain_port = free_port()
        self.seen: list[Seen] = []
        self.handshakes_refused = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WsOrigin:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(lambda: self._stop and self._stop.set_result(None))
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = self._loop.create_future()
        options: Any = {"process_request": self._process_request, "compression": None, "ping_interval": None}
        async with (
            serve(self._handler, "127.0.0.1", self.port, ssl=self.ssl, max_size=None, **options),
            serve(self._handler, "127.0.0.1", self.plain_port, max_size=None, **options),
        ):
            self._ready.set()
            await self._stop

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        tls = conn.transport.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        fingerprint = hashlib.sha256(der).hexdigest() if der else ""
        subject = x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else ""
        self.seen.append(Seen(request.path, request.headers.get("Upgrade"), fingerprint, subject))
        if request.path == "/deny":
            return conn.respond(403, "origin says no\n")
        if request.path == "/page":
            page = conn.respond(200, PAGE)
            del page.headers["Content-Type"]
            page.headers["Content-Type"] = "text/html; charset=utf-8"
            return page
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        seen = self.seen[-1]
        try:
            if ws.request is not None and ws.request.path == "/bye":
                await ws.send("bye")
                await ws.close(4001, "done")
            elif ws.request is not None and ws.request.path == "/flood":
                chunk = b"x" * MESSAGE
                for _ in range(FLOOD_MESSAGES):
                    await ws.send(chunk)
                seen.events.append(("flood sent", time.monotonic()))
                await ws.wait_closed()
            else:
                async for message in ws:
                    await ws.send(message)
        except ConnectionClosed:
            pass
        seen.close_code = ws.close_code

    def wait_closed(self, path: str, timeout: float = 5.0) -> Seen:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [s for s in self.seen if s.path == path and s.close_code is not None]
            if done:
                return done[-1]
            time.sleep(0.05)
        raise AssertionError(f"the origin's {path} connection did not end: {self.seen}")


@dataclass
class Setup:
    serve: ServeProcess
    origin: WsOrigin
    cf: Cloudflare
    zone_ids: dict[str, str]
    fingerprints: dict[str, str]
    work: Path

    def url(self, host: str, path: str) -> str:
        return f"wss://{host}:{self.serve.https_port}{path}"

    def client(self, host: str, path: str, **kwargs: Any) -> Any:
        """A `websockets` client to the edge (SNI and Host ``host``, TCP to 127.0.0.1)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if "sock" not in kwargs:
            kwargs.update(host="127.0.0.1", port=self.serve.https_port)
        return connect(
            self.url(host, path),
            ssl=context,
            server_hostname=host,
            compression=None,
            ping_interval=None,
            max_size=None,
            open_timeout=10,
            **kwargs,
        )

    def access_log(self, want: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        path = self.work / "access.log"
        while True:
            text = path.read_text() if path.exists() else ""
            if want in text or time.monotonic() > deadline:
                return [json.loads(line) for line in text.splitlines() if line]
            time.sleep(0.1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("ws-edge")
    pki = UploadPki.create("ws test CA")
    with WsOrigin(work, pki) as origin:
        serve_proc = start_serve(
            work / "data",
            extra_args=[
                "--origin-https-port",
                str(origin.port),
                "--origin-http-port",
                str(origin.plain_port),
                "--access-log",
                str(work / "access.log"),
                "--websocket-idle-timeout",
                str(IDLE),
                "--workers",
                "1",  # /metrics is then read from the process that relays (workers report once a second)
            ],
        )
        try:
            cf = Cloudflare(api_token=serve_proc.token, base_url=f"{serve_proc.api_url}/client/v4", max_retries=0)
            account = next(iter(cf.accounts.list()))
            zone_ids, fingerprints = {}, {}
            for name in (ON, OFF):
                zone = cf.zones.create(account={"id": account.id}, name=name)
                assert zone is not None
                zone_ids[name] = zone.id
                cf.dns.records.create(
                    zone_id=zone.id, name=f"app.{name}", type="A", content="127.0.0.1", ttl=1, proxied=True
                )
                cf.zones.settings.edit("ssl", zone_id=zone.id, value="full")
                leaf = pki.client(f"edge.{name}")
                cert, key = leaf_pems(leaf)
                cf.origin_tls_client_auth.zone_certificates.create(zone_id=zone.id, certificate=cert, private_key=key)
                cf.origin_tls_client_auth.settings.update(zone_id=zone.id, enabled=True)
                der = x509.load_pem_x509_certificate(cert.encode()).public_bytes(Encoding.DER)
                fingerprints[name] = hashlib.sha256(der).hexdigest()
            cf.zones.settings.edit("websockets", zone_id=zone_ids[OFF], value="off")  # type: ignore[arg-type]
            rules: Any = [{"action": "block", "expression": 'http.request.uri.path eq "/blocked"'}]
            cf.rulesets.phases.update("http_request_firewall_custom", zone_id=zone_ids[ON], rules=rules)
            setup = Setup(serve_proc, origin, cf, zone_ids, fingerprints, work)
            _wait_until_routed(setup)
            yield setup
        finally:
            serve_proc.stop()


def _wait_until_routed(setup: Setup, timeout: float = 15.0) -> None:
    """Changes reach the edge within a second: wait until the WAF rule and the setting are both in."""

    async def probe() -> tuple[int, int]:
        statuses = []
        for host, path in ((f"app.{ON}", "/blocked"), (f"app.{OFF}", "/probe")):
            try:
                async with setup.client(host, path):
                    statuses.append(101)
            except InvalidStatus as exc:
                statuses.append(exc.response.status_code)
        return statuses[0], statuses[1]

    deadline = time.monotonic() + timeout
    got: tuple[int, int] = (0, 0)
    while time.monotonic() < deadline:
        got = asyncio.run(probe())
        if got[0] == 403 and got[1] != 101:
            return
        time.sleep(0.2)
    raise AssertionError(f"edge not configured in time: {got}")


def test_echo_through_the_edge_with_the_zone_certificate(setup: Setup) -> None:
    async def run() -> list[str | bytes]:
        async with setup.client(f"app.{ON}", "/echo") as ws:
            await ws.send("hello")
            first = await ws.recv()
            await ws.send(b"\x00\x01binary")
            second = await ws.recv()
            assert ws.response is not None and ws.response.headers.get("CF-Ray")
            return [first, second]

    assert asyncio.run(run()) == ["hello", b"\x00\x01binary"]
    seen = setup.origin.wait_closed("/echo")
    assert seen.upgrade == "websocket"
    assert seen.fingerprint == setup.fingerprints[ON]  # the zone certificate, by AOP precedence
    assert seen.subject == f"CN=edge.{ON}"
    assert seen.close_code == 1000  # the client's close reached the origin, and its answer came back

    records = [r for r in setup.access_log('"path":"/echo"') if r["path"] == "/echo" and r["status"] == 101]
    assert records, "no access-log line for the WebSocket"
    assert records[-1]["bytes"] > len("hello") and records[-1]["duration_ms"] > 0
    assert records[-1]["client_cert"] is not None


def test_plain_http_visitor_and_origin(setup: Setup) -> None:
    """ws:// in Full mode: plain HTTP to the origin's HTTP port (no certificate to present), TCP both ways."""

    async def run() -> str | bytes:
        async with connect(
            f"ws://app.{ON}:{setup.serve.http_port}/plain",
            host="127.0.0.1",
            port=setup.serve.http_port,
            compression=None,
            ping_interval=None,
        ) as ws:
            await ws.send("over http")
            return await ws.recv()

    assert asyncio.run(run()) == "over http"
    seen = setup.origin.wait_closed("/plain")
    assert seen.fingerprint == "" and seen.close_code == 1000


def test_large_messages_both_ways(setup: Setup) -> None:
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB, many TLS records and relay reads

    async def run() -> bytes | str:
        async with setup.client(f"app.{ON}", "/echo") as ws:
            await ws.send(payload)
            return await ws.recv()

    assert asyncio.run(run()) == payload


def test_backpressure_holds_the_origin_back_while_the_visitor_does_not_read(setup: Setup) -> None:
    """48 MiB from the origin to a visitor that waits before reading: with backpressure, the origin cannot
    finish sending before the visitor starts reading (the edge does not buffer what the visitor has not
    taken; socket buffers hold far less than 48 MiB, the client's socket buffer is pinned at 64 KiB)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", setup.serve.https_port))

    async def run() -> tuple[float, int]:
        async with setup.client(f"app.{ON}", "/flood", sock=sock, max_queue=1) as ws:
            await asyncio.sleep(BACKPRESSURE_PAUSE)
            reading_from = time.monotonic()
            total = 0
            for _ in range(FLOOD_MESSAGES):
                total += len(await ws.recv())
            return reading_from, total

    reading_from, total = asyncio.run(run())
    assert total == FLOOD_MESSAGES * MESSAGE
    seen = setup.origin.wait_closed("/flood")
    sent_at = dict(seen.events)["flood sent"]
    assert sent_at > reading_from, "the origin finished sending while the visitor was not reading"


def test_close_from_the_origin_reaches_the_visitor(setup: Setup) -> None:
    async def run() -> tuple[str | bytes, int | None, str | None]:
        async with setup.client(f"app.{ON}", "/bye") as ws:
            message = await ws.recv()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return message, ws.close_code, ws.close_reason

    assert asyncio.run(run()) == ("bye", 4001, "done")


def test_waf_block_is_answered_and_never_reaches_the_origin(setup: Setup) -> None:
    before = len([s for s in setup.origin.seen if s.path == "/blocked"])

    async def run() -> Response:
        with pytest.raises(InvalidStatus) as info:
            async with setup.client(f"app.{ON}", "/blocked"):
                pass
        return info.value.response

    response = asyncio.run(run())
    assert response.status_code == 403 and b"1020" in response.body
    assert len([s for s in setup.origin.seen if s.path == "/blocked"]) == before == 0


def test_origin_refusing_the_upgrade_is_relayed_as_a_response(setup: Setup) -> None:
    async def run() -> Response:
        with pytest.raises(InvalidStatus) as info:
            async with setup.client(f"app.{ON}", "/deny"):
                pass
        return info.value.response

    response = asyncio.run(run())
    assert response.status_code == 403 and response.body == b"origin says no\n"
    assert response.headers.get("CF-Ray")


def test_websockets_off_forwards_without_the_upgrade(setup: Setup) -> None:
    async def run() -> Response:
        with pytest.raises(InvalidStatus) as info:
            async with setup.client(f"app.{OFF}", "/off"):
                pass
        return info.value.response

    response = asyncio.run(run())
    assert response.status_code == 426  # the origin's answer to a GET without Upgrade
    seen = [s for s in setup.origin.seen if s.path == "/off"]
    assert seen and seen[-1].upgrade is None
    assert seen[-1].fingerprint == setup.fingerprints[OFF]


def test_idle_websocket_is_closed_after_the_timeout(setup: Setup) -> None:
    async def run() -> tuple[float, str | bytes]:
        async with setup.client(f"app.{ON}", "/idle") as ws:
            await ws.send("ping")
            echoed = await ws.recv()
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), IDLE * 4)
            return time.monotonic() - started, echoed

    waited, echoed = asyncio.run(run())
    assert echoed == "ping"
    assert IDLE * 0.8 <= waited < IDLE * 3
    assert setup.origin.wait_closed("/idle").close_code == 1006  # the edge cut it; no close frame


def test_metrics_count_upgrades_and_open_websockets(setup: Setup) -> None:
    def scrape() -> dict[str, float]:
        text = httpx.get(f"{setup.serve.api_url}/metrics", timeout=5).text
        values = {}
        for line in text.splitlines():
            if line.startswith("originlock_edge_websocket"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    async def run() -> tuple[dict[str, float], dict[str, float]]:
        before = scrape()
        async with setup.client(f"app.{ON}", "/echo") as ws:
            await ws.send("x")
            await ws.recv()
            during = await asyncio.to_thread(scrape)
        return before, during

    before, during = asyncio.run(run())
    assert during["originlock_edge_websocket_upgrades_total"] == before["originlock_edge_websocket_upgrades_total"] + 1
    assert during["originlock_edge_websockets_active"] >= 1
    deadline = time.monotonic() + 5
    while scrape()["originlock_edge_websockets_active"] != 0:
        assert time.monotonic() < deadline, "the relay was not counted as closed"
        time.sleep(0.1)


def test_frame_sent_with_the_handshake_is_relayed(setup: Setup) -> None:
    """A visitor's first frame in the same TLS write as its handshake (llhttp stops at the head; the bytes
    after it go to the origin once it accepted)."""
    payload, mask = b"early", b"\x01\x02\x03\x04"
    frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    handshake = (
        f"GET /early HTTP/1.1\r\nHost: app.{ON}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", setup.serve.https_port), timeout=10)
    with context.wrap_socket(raw, server_hostname=f"app.{ON}") as tls:
        tls.sendall(handshake + frame)
        received = b""
        while not received.endswith(b"\x81\x05early"):
            data = tls.recv(65536)
            assert data, f"connection ended after {received!r}"
            received += data
    head = received.partition(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 101 ")
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455's example key and answer
    assert "CF-Ray: " in head


def test_a_browser_loads_a_page_over_http2_and_opens_a_websocket_through_the_edge(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Headless Chromium: the page comes over HTTP/2 (ALPN h2) from the mTLS origin, and its script's
    WebSocket (a separate HTTP/1.1 connection: the edge does not offer RFC 8441) echoes through the edge."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip(False, "playwright is not installed (pip install playwright; no browser download needed)")
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed (apt-get install chromium)")
    host = f"app.{ON}"
    shots = tmp_path_factory.mktemp("h2-websocket-screenshot")
    args = ["--no-sandbox", f"--host-resolver-rules=MAP {host} 127.0.0.1", "--ignore-certificate-errors"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(f"https://{host}:{setup.serve.https_port}/page", timeout=20_000)
            page.wait_for_function("document.getElementById('echo').textContent !== 'waiting'", timeout=20_000)
            page.screenshot(path=str(shots / "page.png"))
            protocol = page.inner_text("#protocol")
            echo = page.inner_text("#echo")
        finally:
            browser.close()
    print(f"\nscreenshot: {shots / 'page.png'}")
    assert protocol == "h2"
    assert echo == "echo: hello through the edge"
    # Both went through the edge with the zone's client certificate.
    page_seen = [s for s in setup.origin.seen if s.path == "/page"]
    echo_seen = [s for s in setup.origin.seen if s.path == "/echo" and s.upgrade == "websocket"]
    assert page_seen and page_seen[-1].fingerprint == setup.fingerprints[ON]
    assert echo_seen and echo_seen[-1].fingerprint == setup.fingerprints[ON]
