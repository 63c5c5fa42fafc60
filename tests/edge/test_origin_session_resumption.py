"""TLS sessions to origins are resumed per pool key, against a real nginx origin that requires the client
certificate, closes every connection after one response and offers tickets and a session cache; a
session is never offered under another client identity, nor after its certificate is retired."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.require import require_executable

from .conftest import curl

pytestmark = pytest.mark.slow

#: The origin answers with what the test checks: resumed ("r") or not ("."), and the client identity.
ECHO = 'return 200 "reused=$ssl_session_reused dn=$ssl_client_s_dn\\n";'


class Env:
    def __init__(self, tmp: Path, pki: TestPki, port: int) -> None:
        self.tmp, self.pki, self.port = tmp, pki, port
        self.cert_a = pki.client("zone-a", id="a")
        self.cert_b = pki.client("zone-b", id="b")
        self.cert_a2 = pki.client("zone-a-rotated", id="a")
        self.edge_ca = tmp / "edge-ca.pem"
        self.edge_ca.write_text(pki.edge_ca.cert_pem)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pki: TestPki) -> Iterator[Env]:
    nginx = require_executable("nginx")
    tmp = tmp_path_factory.mktemp("resume")
    env = Env(tmp, pki, free_port())
    cert, key = pki.write(tmp, "origin", pki.server("origin.test", "*.example.test", "127.0.0.1"))
    trusted = tmp / "pull-ca.pem"
    trusted.write_text(pki.origin_pull_ca.cert_pem)
    block = (
        "ssl_session_cache shared:S:1m; ssl_session_tickets on;\n"
        f"server {{ listen 127.0.0.1:{env.port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};\n"
        f"  ssl_client_certificate {trusted}; ssl_verify_client on; keepalive_timeout 0;\n"
        f"  location / {{ {ECHO} }} }}\n"
    )
    proc = NginxProcess(nginx, tmp / "nginx", block, ports=[env.port]).start()
    try:
        yield env
    finally:
        proc.stop()


def snapshot(env: Env, cert_a: object, generation: int = 1):  # type: ignore[no-untyped-def]
    return make_snapshot(
        env.pki,
        make_route("a.example.test", client_cert=cert_a),  # type: ignore[arg-type]
        make_route("b.example.test", client_cert=env.cert_b),
        generation=generation,
    )


def get(env: Env, edge: EdgeThread, host: str) -> str:
    port = edge.https_port
    status, _, body = curl(f"https://{host}:{port}/", resolve=[f"{host}:{port}:127.0.0.1"], cacert=str(env.edge_ca))
    assert status == 200, body
    return body.strip()


def test_sessions_resume_per_identity_and_not_after_rotation(env: Env) -> None:
    source = MemorySnapshotSource(snapshot(env, env.cert_a))
    config = EdgeConfig(http=None, https=("127.0.0.1", 0), origin_https_port=env.port)
    with EdgeThread(config, source) as edge:
        assert get(env, edge, "a.example.test") == "reused=. dn=CN=zone-a"  # nothing to resume yet
        assert get(env, edge, "a.example.test") == "reused=r dn=CN=zone-a"  # a new connection, resumed
        # Another identity to the same origin and SNI scheme never gets zone-a's session.
        assert get(env, edge, "b.example.test") == "reused=. dn=CN=zone-b"
        assert get(env, edge, "b.example.test") == "reused=r dn=CN=zone-b"
        assert get(env, edge, "a.example.test") == "reused=r dn=CN=zone-a"
        # The zone's certificate is replaced: the old identity's session is not offered with the new one.
        source.swap(snapshot(env, env.cert_a2, generation=2))
        deadline = time.monotonic() + 10
        while (body := get(env, edge, "a.example.test")) != "reused=. dn=CN=zone-a-rotated":
            assert "dn=CN=zone-a-rotated" not in body, body  # the new identity is never resumed at first
            assert time.monotonic() < deadline, body
        assert get(env, edge, "a.example.test") == "reused=r dn=CN=zone-a-rotated"


def test_a_revoked_client_certificate_is_never_resumed_even_when_reinstated(env: Env) -> None:
    # The zone's certificate is revoked (deleted: the zone falls back to another identity), then the very same
    # certificate comes back. Its sessions went with it: the first dial under it is a full handshake, though
    # the origin (which keeps its ticket keys) would still accept the old session.
    cert_c = env.pki.client("zone-c", id="c")
    source = MemorySnapshotSource(snapshot(env, cert_c))
    config = EdgeConfig(http=None, https=("127.0.0.1", 0), origin_https_port=env.port)
    with EdgeThread(config, source) as edge:
        assert get(env, edge, "a.example.test") == "reused=. dn=CN=zone-c"
        assert get(env, edge, "a.example.test") == "reused=r dn=CN=zone-c"  # resumption works for it
        source.swap(snapshot(env, env.cert_b, generation=2))  # zone-c's certificate revoked
        deadline = time.monotonic() + 10
        while get(env, edge, "a.example.test") != "reused=r dn=CN=zone-b":  # the swap has landed
            assert time.monotonic() < deadline
        source.swap(snapshot(env, cert_c, generation=3))  # the same certificate again
        deadline = time.monotonic() + 10
        while (body := get(env, edge, "a.example.test")) != "reused=. dn=CN=zone-c":
            assert body == "reused=r dn=CN=zone-b", body  # zone-c's old session is never offered
            assert time.monotonic() < deadline, body
        assert get(env, edge, "a.example.test") == "reused=r dn=CN=zone-c"
