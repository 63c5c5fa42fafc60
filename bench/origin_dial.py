"""Objects each origin dial leaves to Python's cyclic garbage collector (issue 11).

A profiling aid, not a comparison with nginx: it dials a real nginx origin that requires the client
certificate (``keepalive_timeout 0``, as in product_vs_nginx.py's "new origin connection" shape), sends one
request, reads the response, closes, and repeats. The cyclic GC is disabled during the dials; the count
``gc.collect()`` finds afterwards, divided by the dials, is what every closed connection left behind
(reference cycles: parser <-> protocol, deadline <-> owner, protocol <-> transport). With no cycles it is 0
and the connection is freed by reference counting the moment it closes, as nginx frees its pool.

    python bench/origin_dial.py [--dials 200] [--loop uvloop|asyncio] [--show 20]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import tempfile
import time
from pathlib import Path

from originlock.edge.loops import loop_factory
from originlock.origin.connection import OriginConnection
from originlock.origin.connector import Connector, OriginTimeouts
from originlock.origin.peer import OriginPeer, VerifyMode
from originlock.origin.resolve import Resolver, getaddrinfo_lookup
from originlock.origin.tls import OriginTlsContexts
from originlock.proto.events import MessageEnded
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.pki import TestPki
from originlock.testing.require import require_executable

REQUEST = b"GET / HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n"


def start_origin(tmp: Path, pki: TestPki, *, resumption: bool) -> tuple[NginxProcess, int]:
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cert, key = pki.write(tmp, "origin", pki.server("origin.test", "127.0.0.1"))
    trusted = tmp / "pull-ca.pem"
    trusted.write_text(pki.origin_pull_ca.cert_pem)
    sessions = (
        "ssl_session_cache shared:S:1m; ssl_session_tickets on;"
        if resumption
        else ("ssl_session_cache off; ssl_session_tickets off;")
    )
    block = (
        f"{sessions}\nserver {{ listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};\n"
        f"  ssl_client_certificate {trusted}; ssl_verify_client on; keepalive_timeout 0;\n"
        '  location / { return 200 "ok\\n"; } }\n'
    )
    return NginxProcess(require_executable("nginx"), tmp / "nginx", block, ports=[port]).start(), port


async def one_dial(connector: Connector, peer: OriginPeer) -> OriginConnection:
    conn = await connector.connect(peer)
    conn.start_exchange(b"GET")
    conn.write(REQUEST)
    while not isinstance(await conn.next_event(5.0), MessageEnded):
        pass
    conn.finish_exchange(False)
    conn.close()
    return conn


async def dials(peer: OriginPeer, count: int, show: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    connector = Connector(
        loop, Resolver(getaddrinfo_lookup(loop), time.monotonic), OriginTlsContexts(), OriginTimeouts()
    )
    for _ in range(5):  # warm: contexts, the resolver, the loop's free lists
        await one_dial(connector, peer)
    await asyncio.sleep(0.05)
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(count):
            await one_dial(connector, peer)
        await asyncio.sleep(0.05)  # let the transports' close callbacks run
        cpu = time.process_time() - start
        if show:
            gc.set_debug(gc.DEBUG_SAVEALL)
            found = gc.collect()
            kinds = collections.Counter(type(o).__qualname__ for o in gc.garbage)
            gc.garbage.clear()
            gc.set_debug(0)
            for name, n in kinds.most_common(show):
                print(f"  {n / count:6.1f}  {name}")
        else:
            found = gc.collect()
    finally:
        gc.enable()
    return found / count, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dials", type=int, default=200)
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--show", type=int, default=0, help="list the N most frequent kinds of object left")
    args = parser.parse_args()
    pki = TestPki()
    client = pki.client("zone-a")
    with tempfile.TemporaryDirectory() as tmp:
        for resumption in (False, True):
            nginx, port = start_origin(Path(tmp) / str(resumption), pki, resumption=resumption)
            try:
                peer = OriginPeer("127.0.0.1", port, True, "origin.test", VerifyMode.NONE, client_cert=client)
                with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
                    left, cpu = runner.run(dials(peer, args.dials, args.show))
            finally:
                nginx.stop()
            label = "with resumption" if resumption else "full handshake "
            print(f"{label}: {left:5.1f} objects left to the cyclic GC per dial, {cpu:7.1f} us CPU per dial")


if __name__ == "__main__":
    main()
