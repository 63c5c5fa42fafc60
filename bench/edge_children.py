"""What the measured edge children of the count scripts share (origin_dial_edge.py, visitor_conn_instructions.py).

Each of those scripts writes a small child program that runs one edge (the product's ``EdgeServer`` or the
floor relay of edge_floor_relay.py) under valgrind or strace, and drives it from outside. The children
import this module (their fourth argument is this folder): the test PKI written the same way for both
edges, and the same way of saying ``ready`` and of stopping when the parent closes their stdin.
Start-up costs are removed by the scripts' two-run difference, so what lives here is never counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
from collections.abc import Awaitable
from pathlib import Path

from originlock.testing.pki import TestPki


def write_origin_files(pki: TestPki, directory: Path) -> None:
    """The origin's certificate and key (``origin.pem``/``origin.key``) and the origin-pull CA it trusts
    (``pull-ca.pem``): what valgrind_counts.origin_block's nginx reads."""
    pki.write(directory, "origin", pki.server("origin.test", "*.example.test", "127.0.0.1"))
    (directory / "pull-ca.pem").write_text(pki.origin_pull_ca.cert_pem)


def write_floor_files(pki: TestPki, directory: Path) -> None:
    """Besides the origin's files, what the floor relay reads: the origin CA, the edge's chain for
    ``a.example.test`` (a leaf of the edge CA, sent with the CA as the product does) and zone-a's client
    certificate."""
    write_origin_files(pki, directory)
    (directory / "origin-ca.pem").write_text(pki.origin_ca.cert_pem)
    leaf = pki.server("a.example.test", ca=pki.edge_ca)
    (directory / "edge.pem").write_text(leaf.cert_pem + pki.edge_ca.cert_pem)
    (directory / "edge.key").write_bytes(leaf.key_pem)
    client = pki.client("zone-a")
    (directory / "zone-a-chain.pem").write_bytes(client.chain_pem)
    (directory / "zone-a.key").write_bytes(client.key_pem)


async def listening(port: int) -> None:
    """Until something accepts connections on 127.0.0.1:``port``."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port)):
                return
        except OSError:
            await asyncio.sleep(0.05)


async def serve_until_stdin_closes(serving: Awaitable[object]) -> None:
    """Say ``ready``, then await ``serving`` until the parent closes stdin (the edge then stops cleanly, so
    that valgrind writes its counts)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def wait() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(task.cancel)

    threading.Thread(target=wait, daemon=True).start()
    print("ready", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await serving
