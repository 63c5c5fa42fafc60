"""A closed visitor connection, and the origin connection dialled for its request, are freed by reference
counting, not left to Python's cyclic garbage collector (issue 11: with a new connection per request, every
HTTP/1.1 visitor connection left 31 objects and every HTTP/2 one 40 waiting for a collection; the collector
then walks the whole heap). For HTTP/2 both libnghttp2 sessions are held to it, the codec's objects too.
The edge runs on uvloop in this process with the cyclic collector off while
h2load (a real peer) opens one TLS connection per request; nginx, the origin, requires the client certificate
and closes after each response, so each request dials too. The count is what ``gc.collect()`` then finds."""

from __future__ import annotations

import collections
import gc
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.proto import http2_ng
from originlock.proto.nghttp2_lib import load_shim, shim_unavailable_reason
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.require import require_executable

pytestmark = pytest.mark.slow

CONNECTIONS = 20


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, pki: TestPki) -> Iterator[EdgeThread]:
    h2load = require_executable("h2load")
    del h2load
    tmp = tmp_path_factory.mktemp("cycles")
    port = free_port()
    cert, key = pki.write(tmp, "origin", pki.server("origin.test", "*.example.test", "127.0.0.1"))
    trusted = tmp / "pull-ca.pem"
    trusted.write_text(pki.origin_pull_ca.cert_pem)
    block = (
        f"server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};\n"
        f"  ssl_client_certificate {trusted}; ssl_verify_client on; keepalive_timeout 0;\n"
        '  location / { return 200 "ok\\n"; } }\n'
    )
    nginx = NginxProcess(require_executable("nginx"), Path(tmp) / "nginx", block, ports=[port]).start()
    source = MemorySnapshotSource(make_snapshot(pki, make_route("a.example.test", client_cert=pki.client("zone-a"))))
    config = EdgeConfig(http=None, https=("127.0.0.1", 0), origin_https_port=port, loop="uvloop")
    try:
        with EdgeThread(config, source) as thread:
            yield thread
    finally:
        nginx.stop()


def _connections(edge: EdgeThread, *, h1: bool) -> None:
    """CONNECTIONS TLS connections with one request each, all answered 200."""
    command = ["h2load", "-n", str(CONNECTIONS), "-c", str(CONNECTIONS), "-m", "1"]
    command += [f"--connect-to=127.0.0.1:{edge.https_port}", f"https://a.example.test:{edge.https_port}/"]
    if h1:
        command.insert(1, "--h1")
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert f"status codes: {CONNECTIONS} 2xx" in out.stdout, out.stdout + out.stderr


#: Where the objects of a connection cycle come from: a cycle through a connection holds some of these.
OUR_MODULES = ("originlock", "uvloop", "ssl", "_ssl", "httptools", "asyncio")


def _ours(obj: object) -> bool:
    return type(obj).__module__.partition(".")[0] in OUR_MODULES


def _left_behind(edge: EdgeThread, *, h1: bool) -> collections.Counter[str]:
    _connections(edge, h1=h1)  # warm: contexts, sessions, the loop's free lists
    time.sleep(0.3)
    gc.collect()
    gc.disable()
    try:
        _connections(edge, h1=h1)
        time.sleep(0.5)  # the edge's close callbacks run
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        # Only the edge's own kind of objects: other tests' threads (a PostgreSQL listener...) may leave
        # garbage of their own in the same process meanwhile.
        left = collections.Counter(type(obj).__name__ for obj in gc.garbage if _ours(obj))
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()
    return left


def test_http1_visitor_and_origin_connections_are_freed_by_refcounting(edge: EdgeThread) -> None:
    assert _left_behind(edge, h1=True) == collections.Counter()


@pytest.mark.parametrize("session", [http2_ng.SHIM, http2_ng.CFFI])
def test_http2_visitor_connections_are_freed_by_refcounting(edge: EdgeThread, session: str) -> None:
    """Both libnghttp2 sessions: the cffi one used to keep a user-data handle to itself (issue 12)."""
    if session == http2_ng.SHIM and load_shim() is None:
        if os.environ.get("ORIGINLOCK_EXPECT_COMPILED") == "1":
            pytest.fail(f"the compiled wheel has no HTTP/2 shim: {shim_unavailable_reason()}")
        pytest.skip(f"the HTTP/2 shim is not built here: {shim_unavailable_reason()}")
    http2_ng.set_session_kind(session)
    try:
        assert _left_behind(edge, h1=False) == collections.Counter()
    finally:
        http2_ng.set_session_kind(None)
