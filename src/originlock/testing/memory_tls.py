"""TLS between two in-memory ends: what tests of TLS contexts and objects drive without sockets or a loop."""

from __future__ import annotations

import ssl

__all__ = ["MemoryEnd", "handshake"]


class MemoryEnd:
    """One end of an in-memory TLS connection: its ``SSLObject`` and the two BIOs under it."""

    def __init__(self, ctx: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=server_side, server_hostname=server_hostname)


def handshake(client: MemoryEnd, server: MemoryEnd, rounds: int = 20) -> None:
    """Both ends' handshakes to completion, each flight passed across as it is written.

    Raises:
        AssertionError: not finished after ``rounds`` exchanges of flights.
        ssl.SSLError: an end refused the handshake.
    """
    done: set[int] = set()
    for _ in range(rounds):
        for end in (client, server):
            if id(end) not in done:
                try:
                    end.obj.do_handshake()
                    done.add(id(end))
                except ssl.SSLWantReadError:
                    pass
        server.incoming.write(client.outgoing.read())
        client.incoming.write(server.outgoing.read())
        if len(done) == 2:
            return
    raise AssertionError("the in-memory handshake did not finish")
