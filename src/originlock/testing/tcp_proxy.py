"""A TCP proxy for tests that puts faults between a node and its store: pass, refuse, or hang.

- ``pass``: bytes flow both ways.
- ``refuse``: the listening socket is closed (new connections get ECONNREFUSED) and every open
  connection is reset, as when the database host is down.
- ``hang``: connections stay open but no byte moves in either direction, and new connections are
  accepted and then left silent, as with a partition or a frozen proxy. Bytes sent meanwhile are held
  and delivered when the mode returns to ``pass`` (the worst case for "applied later").
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal

__all__ = ["TcpProxy"]

Mode = Literal["pass", "refuse", "hang"]


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._mode: Mode = "pass"
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = 0
        self._listen()

    def __repr__(self) -> str:
        return f"TcpProxy(port={self.port}, mode={self._mode})"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            previous, self._mode = self._mode, mode
            conns, listener = list(self._conns), self._listener
            if mode == "refuse":
                self._conns.clear()
                self._listener = None
        if mode == "hang":
            self._flowing.clear()
        elif mode == "refuse":
            if listener is not None:
                listener.close()
            for conn in conns:
                _reset(conn)
            self._flowing.set()
        else:
            if previous == "refuse":
                self._listen()
            self._flowing.set()

    def close(self) -> None:
        self.set_mode("refuse")

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._open, args=(client,), daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        self._flowing.wait()
        try:
            origin = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            if self._mode == "refuse":
                client.close()
                origin.close()
                return
            self._conns += [client, origin]
        threading.Thread(target=self._pump, args=(client, origin), daemon=True).start()
        threading.Thread(target=self._pump, args=(origin, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
