"""Issue 10 item 16: the visitor listener offers no CBC suites (testssl: LUCKY13 "potentially") and negotiates
X25519 (then P-256, P-384: OpenSSL's and nginx's default order), checked with ``openssl s_client``; FIPS
origin pulls never offer X25519 (not approved for key agreement), ordinary pulls do."""

from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.edge.config import EdgeConfig
from originlock.edge.snapshots import MemorySnapshotSource
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.tls import OriginTlsContexts
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.testing.require import require_executable

pytestmark = pytest.mark.slow

HOST = "app.example.test"


@pytest.fixture(scope="module")
def https_port() -> Iterator[int]:
    pki = TestPki()
    config = EdgeConfig(http=None, https=("127.0.0.1", 0))
    with EdgeThread(config, MemorySnapshotSource(make_snapshot(pki, make_route(HOST)))) as edge:
        yield edge.https_port


def s_client(port: int, *args: str) -> tuple[bool, str]:
    """Handshake with ``openssl s_client``; returns (completed, output)."""
    openssl = require_executable("openssl")
    out = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", HOST, *args],
        input=b"",
        capture_output=True,
        timeout=20,
    )
    text = out.stdout.decode(errors="replace") + out.stderr.decode(errors="replace")
    cipher = re.search(r"Cipher is (\S+)", text)
    return cipher is not None and cipher.group(1) != "(NONE)", text


def temp_key(text: str) -> str:
    found = re.search(r"(?:Server|Peer) Temp Key: ([^,\n]+)", text)
    assert found is not None, text
    return found.group(1)


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_x25519_is_negotiated(https_port: int, version: str) -> None:
    ok, text = s_client(https_port, version)
    assert ok, text
    assert temp_key(text) == "X25519"


@pytest.mark.parametrize(("group", "shown"), [("P-256", "ECDH, prime256v1"), ("P-384", "ECDH, secp384r1")])
def test_nist_groups_still_work(https_port: int, group: str, shown: str) -> None:
    ok, text = s_client(https_port, "-tls1_3", "-groups", group)
    assert ok, text
    assert shown.split(", ")[1] in text


@pytest.mark.parametrize(
    "cipher",
    [
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-ECDSA-AES256-SHA384",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA256",
        "AES128-SHA256",
    ],
)
def test_cbc_suites_are_refused(https_port: int, cipher: str) -> None:
    ok, text = s_client(https_port, "-tls1_2", "-cipher", cipher)
    assert not ok, text


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"])
def test_aead_suites_are_accepted(https_port: int, cipher: str) -> None:
    ok, text = s_client(https_port, "-tls1_2", "-cipher", cipher)
    assert ok, text


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> str | None:
    """An in-memory handshake; None when it completed, else the error."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname="origin.example.test")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for name, obj in (("c", c), ("s", s)):
            if done[name]:
                continue
            try:
                obj.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return str(exc)
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return None
    return "did not finish"


@pytest.mark.parametrize(
    ("fips", "group", "completes"), [(True, "X25519", False), (True, "prime256v1", True), (False, "X25519", True)]
)
def test_fips_pulls_do_not_offer_x25519(tmp_path: Path, fips: bool, group: str, completes: bool) -> None:
    pki = TestPki()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert, key = pki.write(tmp_path, "origin", pki.server("origin.example.test"))
    server.load_cert_chain(cert, key)
    server.set_ecdh_curve(group)  # an origin that accepts only this group
    peer = OriginPeer("127.0.0.1", 443, True, "origin.example.test", VerifyMode.NONE, fips=fips)
    client = OriginTlsContexts().for_peer(peer)
    error = _handshake(client, server)
    assert (error is None) is completes, error
