"""One probe: open a TCP+TLS connection, optionally with a client certificate, send one HTTP request.

This is the I/O half of the checker; ``classify.py`` decides what the observation means. Blocking
sockets on purpose: the checker runs three probes one after the other from a CLI or a monitor thread,
and a blocking call with a timeout is the simplest thing that is obviously correct.

The origin's *server* certificate is not verified: the checker asks "who may connect", not "is this the
right server", and origins commonly use self-signed or private-CA certificates (Full mode).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass

from originlock._version import __version__
from originlock.originkit.memcert import load_cert_chain_from_memory
from originlock.originkit.target import Target

__all__ = ["ClientMaterial", "Observation", "observe"]

#: How much of the response we read: enough for a status line, headers and nginx's error title.
MAX_READ = 16 * 1024


@dataclass(frozen=True)
class ClientMaterial:
    """A client certificate chain (leaf first) and its key, both PEM, kept in memory only."""

    chain_pem: str | bytes
    key_pem: str | bytes

    def __repr__(self) -> str:  # never show the key
        return "ClientMaterial(<chain>, <key hidden>)"


@dataclass(frozen=True)
class Observation:
    """What one connection attempt saw. Exactly one of the groups below is set."""

    #: TCP connect failed / timed out: a sentence.
    network_error: str | None = None
    #: ``ssl.SSLError.reason`` (or ``EOF``/``RESET``) and whether the handshake had completed.
    tls_error: str | None = None
    after_handshake: bool = False
    #: HTTP status and the first bytes of the body.
    status: int | None = None
    body_head: bytes = b""
    #: TLS completed, the request was sent, and the server closed without a response.
    closed: bool = False
    #: DER of the server certificate when the handshake completed.
    server_cert_der: bytes | None = None
    elapsed_ms: float = 0.0


def _client_context(client: ClientMaterial | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    if client is not None:
        load_cert_chain_from_memory(ctx, client.chain_pem, client.key_pem)
    return ctx


def _request(target: Target, host_header: str) -> bytes:
    return (
        f"GET {target.path} HTTP/1.1\r\nHost: {host_header}\r\n"
        f"User-Agent: originlock-check/{__version__}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


def _parse_status(data: bytes) -> tuple[int, bytes] | None:
    head, _, body = data.partition(b"\r\n\r\n")
    first = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(first) < 2 or not first[0].startswith(b"HTTP/") or not first[1].isdigit():
        return None
    return int(first[1]), body


def _read_response(conn: socket.socket) -> bytes:
    data = b""
    while len(data) < MAX_READ:
        chunk = conn.recv(MAX_READ - len(data))
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data and len(data.partition(b"\r\n\r\n")[2]) >= 512:
            break
    return data


def observe(target: Target, *, server_name: str, client: ClientMaterial | None, timeout: float) -> Observation:
    """Connect to ``target`` with SNI and Host = ``server_name``, send ``GET``, report what happened.

    Raises:
        KeyMaterialError: ``client`` could not be loaded (bad PEM or key mismatch): a usage error, not a probe result.
    """
    started = time.monotonic()

    def done(**kw: object) -> Observation:
        return Observation(elapsed_ms=(time.monotonic() - started) * 1000, **kw)  # type: ignore[arg-type]

    ctx = _client_context(client) if target.scheme == "https" else None
    try:
        raw = socket.create_connection((target.host, target.port), timeout=timeout)
    except TimeoutError:
        return done(network_error=f"TCP connect to {target.host}:{target.port} timed out after {timeout:g}s")
    except OSError as exc:
        return done(network_error=f"TCP connect to {target.host}:{target.port} failed: {exc.strerror or exc}")
    conn: socket.socket = raw
    handshake_done = ctx is None
    server_der: bytes | None = None
    try:
        if ctx is not None:
            sni = None if _is_ip(server_name) else server_name
            conn = ctx.wrap_socket(raw, server_hostname=sni)
            handshake_done = True
            server_der = conn.getpeercert(binary_form=True)
        conn.sendall(_request(target, server_name))
        data = _read_response(conn)
    except TimeoutError:
        return done(network_error=f"no answer within {timeout:g}s", server_cert_der=server_der)
    except ssl.SSLError as exc:
        reason = "EOF" if isinstance(exc, ssl.SSLEOFError) else exc.reason
        return done(tls_error=reason, after_handshake=handshake_done, server_cert_der=server_der)
    except (ConnectionResetError, BrokenPipeError):
        return done(tls_error="RESET", after_handshake=handshake_done, server_cert_der=server_der)
    finally:
        conn.close()
    parsed = _parse_status(data)
    if parsed is None:
        return done(closed=True, server_cert_der=server_der)
    return done(status=parsed[0], body_head=parsed[1][:MAX_READ], server_cert_der=server_der)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
