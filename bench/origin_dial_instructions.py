#!/usr/bin/env python3
"""Instructions per new mTLS origin connection, counted by valgrind: the product's dial against the floor's.

A profiling aid for issue 11's "new origin connection per request" shapes. One child process dials a real
nginx origin that requires the client certificate (``keepalive_timeout 0``), sends one request, reads the
response and closes, N times, on uvloop; it runs under ``valgrind --tool=cachegrind`` twice with two dial
counts, and the difference divided by the difference in dials removes start-up (imports, key generation).
nginx runs outside valgrind: only the edge side is counted. Instruction counts do not move with other jobs
on the box, so they tell apart steps that CPU times on the shared box cannot.

Dials (``--kinds``):

- ``product``: ``Connector.connect`` (origin/connector.py) and one exchange through ``OriginConnection``,
  as the edge does for every request in the new-origin shapes;
- ``floor``: the do-nothing relay's dial (bench/edge_floor_relay.py): one ``create_connection(ssl=...)``,
  a protocol that writes the request and waits for the origin to close, the same context and session offer;
- ``two-step``: the floor's protocol dialled as the product used to dial, TCP first and then ``start_tls``;
- ``floor-cafile``: the floor's dial through the floor relay's own context (the origin CA alone, where the
  product's strict context also holds the system store).

``--verify strict`` dials as a Full (strict) zone does (product_vs_nginx.py's configuration): the origin's
chain and name checked against the system store plus the origin CA; ``none`` (default) checks nothing.

    python bench/origin_dial_instructions.py [--kinds product,floor] [--dials 40,140] [--syscalls] [--verify strict]

``--syscalls`` also counts the system calls per dial (``strace -f -c``, the same two counts, outside
valgrind). The measured ``originlock`` is the one the interpreter running this script imports, or
``--python``'s (e.g. a venv with ``pip install .`` of another tree: main's and a branch's back to back).
Needs valgrind and nginx (and strace for ``--syscalls``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from valgrind_counts import (
    cachegrind_command,
    cachegrind_events,
    describe_syscalls,
    interpreter,
    per_unit,
    run_child,
    strace_command,
    strace_counts,
)

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import asyncio, hashlib, ssl, sys, time
from datetime import UTC, datetime
from pathlib import Path

from originlock.edge.loops import loop_factory
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.peer import OriginPeer, VerifyMode, trust_id
from originlock.tls.direct import DirectSSLContext
from originlock.origin.resolve import Resolver, getaddrinfo_lookup
from originlock.origin.tls import OriginTlsContexts
from originlock.proto.events import MessageEnded
from originlock.snapshot.model import ClientCert

kind, port, dials, directory = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
strict = sys.argv[5] == "strict"
REQUEST = b"GET / HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n"
chain = (directory / "client-chain.pem").read_bytes()
der_hex = (directory / "client.fp").read_text().strip()
client = ClientCert(id="zone-a", source="zone", fingerprint=der_hex, chain_pem=chain,
                    key_pem=(directory / "client.key").read_bytes(), not_after=datetime(2099, 1, 1, tzinfo=UTC))
if strict:  # Full (strict), as product_vs_nginx.py configures the zone: the system store and the origin CA
    origin_ca = (directory / "origin-ca.pem").read_bytes()
    peer = OriginPeer("127.0.0.1", port, True, "origin.test", VerifyMode.STRICT, trust=trust_id(origin_ca),
                      client_cert=client, origin_ca_pem=origin_ca)
else:
    peer = OriginPeer("127.0.0.1", port, True, "origin.test", VerifyMode.NONE, client_cert=client)
#: The floor relay's own context (bench/edge_floor_relay.py): the origin CA alone, the client certificate.
cafile = DirectSSLContext(ssl.PROTOCOL_TLS_CLIENT)
if strict:
    cafile.load_verify_locations(cadata=origin_ca.decode())
else:
    cafile.check_hostname = False
    cafile.verify_mode = ssl.CERT_NONE
cafile.load_cert_chain(directory / "client-chain.pem", directory / "client.key")


class Bare(asyncio.Protocol):
    def __init__(self, done):
        self.done = done
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        pass

    def connection_lost(self, exc):
        self.transport = None
        if not self.done.done():
            self.done.set_result(None)


async def product(connector, contexts):
    conn = await connector.connect(peer)
    conn.start_exchange(b"GET")
    conn.write(REQUEST)
    while not isinstance(await conn.next_event(5.0), MessageEnded):
        pass
    conn.finish_exchange(False)
    conn.close()


last = []


async def bare(connector, contexts, one_step, own=False):
    loop = asyncio.get_running_loop()
    ctx = cafile if own else contexts.for_peer(peer)
    offer = ctx.offer_session(peer.sni, last[-1] if last else None) if own else contexts.offer_session(peer, ctx)
    done = loop.create_future()
    proto = Bare(done)
    try:
        if one_step:
            transport, _ = await loop.create_connection(
                lambda: proto, "127.0.0.1", port, ssl=ctx, server_hostname=peer.sni)
        else:
            tcp, _ = await loop.create_connection(lambda: proto, "127.0.0.1", port)
            transport = await loop.start_tls(tcp, proto, ctx, server_hostname=peer.sni)
            proto.connection_made(transport)
    finally:
        ctx.withdraw(offer)
    if own:
        last[:] = [transport.get_extra_info("ssl_object")]
    else:
        contexts.remember(peer, ctx, transport.get_extra_info("ssl_object"))
    transport.write(REQUEST)
    await done
    transport.close()


async def main():
    loop = asyncio.get_running_loop()
    contexts = OriginTlsContexts()
    connector = Connector(loop, Resolver(getaddrinfo_lookup(loop), time.monotonic), contexts, OriginTimeouts())
    if kind == "product":
        dial = lambda: product(connector, contexts)
    else:
        dial = lambda: bare(connector, contexts, kind != "two-step", own=kind == "floor-cafile")
    for _ in range(dials):
        await dial()
    await asyncio.sleep(0.05)

with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
    runner.run(main())
"""


def _count(tool: list[str], child: Path, kind: str, port: int, dials: int, tmp: Path, args: argparse.Namespace) -> None:
    run_child(
        [*tool, interpreter(args.python), str(child), kind, str(port), str(dials), str(tmp), args.verify],
        f"{kind} with {dials} dials",
    )


def instructions(child: Path, kind: str, port: int, dials: int, tmp: Path, args: argparse.Namespace) -> int:
    out = tmp / f"cg-{kind}-{dials}"
    _count(cachegrind_command(out), child, kind, port, dials, tmp, args)
    return cachegrind_events(out)["Ir"]


def syscalls(child: Path, kind: str, port: int, dials: int, tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    out = tmp / f"st-{kind}-{dials}"
    _count(strace_command(out), child, kind, port, dials, tmp, args)
    return strace_counts(out)


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from origin_dial import start_origin

    from originlock.testing.pki import TestPki

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="product,floor")
    parser.add_argument("--dials", default="40,140", help="the two dial counts, low,high")
    parser.add_argument("--syscalls", action="store_true")
    parser.add_argument("--origins", default="full,resume")
    parser.add_argument("--python", help="the measured interpreter (a venv's bin/python); default: this one")
    parser.add_argument("--verify", default="none", choices=["none", "strict"])
    args = parser.parse_args()
    low, high = (int(n) for n in args.dials.split(","))
    pki = TestPki()
    client = pki.client("zone-a")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "client-chain.pem").write_bytes(client.chain_pem)
        (tmp / "client.key").write_bytes(client.key_pem)
        (tmp / "client.fp").write_text(client.fingerprint)
        (tmp / "origin-ca.pem").write_text(pki.origin_ca.cert_pem)
        child = tmp / "child.py"
        child.write_text(_CHILD)
        for origin in args.origins.split(","):
            nginx, port = start_origin(tmp / origin, pki, resumption=origin == "resume")
            try:
                for kind in args.kinds.split(","):
                    a, b = (instructions(child, kind, port, n, tmp, args) for n in (low, high))
                    line = f"{origin:6} {kind:9} {(b - a) / (high - low):12,.0f} instructions/dial"
                    if args.syscalls:
                        sa, sb = (syscalls(child, kind, port, n, tmp, args) for n in (low, high))
                        line += "  " + describe_syscalls(per_unit(sa, sb, high - low), 0.5).replace(
                            "syscalls:", "syscalls/dial:"
                        )
                    print(line, flush=True)
            finally:
                nginx.stop()


if __name__ == "__main__":
    main()
