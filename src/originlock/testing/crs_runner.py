"""Send CRS regression cases to a real HTTP server and collect what it answered.

One TCP connection per case (a case may be a malformed request the server answers by closing), many
in parallel. The response's ``CF-Ray`` header (originlock) ties it to the access-log record that holds
the matched rule ids; for a peer without ray ids the caller adds its own correlation header.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from originlock.testing.crs_ftw import Case

__all__ = ["Answer", "send_all"]


@dataclass(frozen=True, slots=True)
class Answer:
    case: Case
    status: int | None
    headers: dict[str, str]
    seconds: float = 0.0


def _read(sock: socket.socket, head_only: bool) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if head_only or head[9:12] in (b"204", b"304"):
        return head  # no body follows (RFC 9110 §6.4.1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def _send(address: tuple[str, int], raw: bytes, timeout: float, sni: str | None) -> tuple[int | None, dict[str, str]]:
    try:
        with socket.create_connection(address, timeout=timeout) as plain:
            sock = plain
            if sni is not None:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # the test edge's certificate is not what is tested
                sock = context.wrap_socket(plain, server_hostname=sni)
            sock.sendall(raw)
            head = _read(sock, raw.startswith(b"HEAD "))
    except OSError:
        return None, {}
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers


def send_all(
    address: tuple[str, int],
    cases: Sequence[Case],
    *,
    workers: int = 8,
    timeout: float = 10.0,
    prepare: Callable[[Case, int], bytes] | None = None,
    sni: str | None = None,
) -> list[Answer]:
    """Each case's status and response headers (status None: no HTTP answer), in case order.

    ``prepare(case, index)`` may rewrite the raw request (e.g. add a correlation header); ``sni`` sends
    the requests over TLS with that server name."""

    def one(index: int) -> Answer:
        case = cases[index]
        raw = prepare(case, index) if prepare else case.raw
        started = time.monotonic()
        status, headers = _send(address, raw, timeout, sni)
        return Answer(case, status, headers, time.monotonic() - started)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(len(cases))))
