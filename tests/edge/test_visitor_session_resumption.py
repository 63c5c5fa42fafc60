"""Visitors resume TLS sessions (`openssl s_client -sess_out/-sess_in`), on any of the --workers processes:
every process encrypts tickets with the same key, derived from one secret and rotated by period."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.runtime import run_edge
from originlock.edge.snapshots import MemorySnapshotSource, SnapshotSource
from originlock.edge.ticket_keys import ROTATION_SECONDS, TicketKeys, ticket_key
from originlock.edge.visitor_tls import VisitorTls
from originlock.testing.nginx import free_port, wait_for_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.require import require_executable

pytestmark = pytest.mark.slow

HOST = "tickets.example.test"


def source_factory() -> SnapshotSource:
    """Module-level, hence picklable: each worker builds its own snapshot."""
    return MemorySnapshotSource(make_snapshot(TestPki(), make_route(HOST, "127.0.0.1")))


@pytest.fixture(scope="module")
def edge_port() -> Iterator[int]:
    """`--workers 2` over HTTPS, as `originlock serve` runs them (one secret in the config)."""
    port = free_port()
    config = EdgeConfig(http=None, https=("127.0.0.1", port), origin_https_port=free_port(), workers=2)
    loop = asyncio.new_event_loop()
    task = loop.create_task(run_edge(config, source_factory))
    thread = threading.Thread(target=lambda: loop.run_until_complete(asyncio.wait([task])), daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=30)
        yield port
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(30)
        loop.close()


def s_client(port: int, session: Path, *, save: bool, version: str) -> tuple[bool, str]:
    """One connection and request; returns (resumed, the answering process's CF-Ray prefix)."""
    openssl = require_executable("openssl")
    args = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", HOST, version, "-ign_eof"]
    args += ["-sess_out" if save else "-sess_in", str(session)]
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    out = subprocess.run(args, input=request, capture_output=True, text=True, timeout=20).stdout
    ray = re.search(r"(?im)^cf-ray: ([0-9a-f]{8})", out)
    assert ray is not None, out[-1500:]
    return "\nReused, " in out, ray.group(1)


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_a_session_resumes_on_every_worker(edge_port: int, tmp_path: Path, version: str) -> None:
    session = tmp_path / "session.pem"
    resumed, first = s_client(edge_port, session, save=True, version=version)
    assert not resumed
    processes = {first}
    # SO_REUSEPORT spreads connections by their ports once both processes listen; the spawned worker may
    # take seconds to start on a busy machine, so keep connecting for a while rather than a fixed number.
    deadline = time.monotonic() + 45
    while len(processes) < 2 and time.monotonic() < deadline:
        resumed, ray = s_client(edge_port, session, save=False, version=version)
        assert resumed, f"not resumed on the process with CF-Ray prefix {ray} (first: {first})"
        processes.add(ray)
    assert len(processes) == 2, "only one process answered: the test did not cross workers"


def test_keys_are_shared_and_rotate_by_period() -> None:
    snapshot = make_snapshot(TestPki(), make_route(HOST))
    now = [10.5 * ROTATION_SECONDS]
    secret = b"s" * 32
    first = VisitorTls(lambda: snapshot, lambda: datetime.now(UTC), ticket_secret=secret, wall_clock=lambda: now[0])
    other = TicketKeys(first.context, secret, lambda: now[0])  # a second process, same secret and time
    assert first.tickets.shared and other.shared
    assert first.tickets.installed() == ticket_key(secret, 10) == other.installed()
    now[0] += ROTATION_SECONDS
    first.tickets.rotate()
    assert first.tickets.installed() == ticket_key(secret, 11) != ticket_key(secret, 10)
    assert ticket_key(b"t" * 32, 11) != ticket_key(secret, 11)


def test_a_default_tls13_client_needs_no_hello_retry() -> None:
    """OpenSSL clients lead with an X25519 key share: the edge takes it, with one ClientHello (one SNI
    callback) instead of a HelloRetryRequest and a second one."""
    snapshot = make_snapshot(TestPki(), make_route(HOST))
    tls = VisitorTls(lambda: snapshot, lambda: datetime.now(UTC))
    calls: list[str | None] = []
    inner = tls.context.sni_callback
    assert inner is not None

    def counting(obj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> int | None:
        calls.append(name)
        return inner(obj, name, ctx)

    tls.context.sni_callback = counting
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname, client_ctx.verify_mode = False, ssl.CERT_NONE
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=HOST)
    server = tls.context.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    assert client.version() == "TLSv1.3" and server.version() == "TLSv1.3"
    assert calls == [HOST]
