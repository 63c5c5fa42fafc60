"""An origin that answers what the request asks for: the CRS response-phase tests' backend.

go-ftw runs the CRS's response-phase regression cases against albedo, whose ``POST /reflect`` takes a JSON
document (``status``, ``headers``, ``body`` or base64 ``encodedBody``) and answers with exactly that; every
other request gets an empty 200. :func:`reflection` is that behaviour as a pure function (the tests' offline
check uses it too), and :class:`ReflectOrigin` serves it over plain HTTP/1.1 on an ephemeral port, meant to
sit behind nginx (which holds the origin's TLS and requires the edge's client certificate).

Like albedo (Go's ``net/http``), a body without a ``Content-Type`` gets a sniffed one
(:func:`sniff_content_type`, the part of Go's ``DetectContentType`` that text bodies reach), so the edge
sees ``text/html`` or ``text/plain; charset=utf-8`` as it would behind albedo.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
from typing import Any, Final

__all__ = ["ReflectOrigin", "reflection", "sniff_content_type"]

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]

_HTML_TAGS: Final = (
    b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV", b"<FONT", b"<TABLE",
    b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P", b"<!--",
)  # fmt: skip
_REASONS: Final = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 500: b"Internal Server Error"}


def sniff_content_type(body: bytes) -> bytes:
    """Go's ``http.DetectContentType`` for the bodies these tests send: HTML by its leading tag, XML by
    ``<?xml``, text when no control byte other than white space occurs, else octet-stream."""
    data = body[:512].lstrip(b"\t\n\x0c\r ")
    upper = data.upper()
    for tag in _HTML_TAGS:
        if upper.startswith(tag) and len(data) > len(tag) and data[len(tag)] in b" >":
            return b"text/html; charset=utf-8"
    if data.startswith(b"<?xml"):
        return b"text/xml; charset=utf-8"
    if any(byte < 0x20 and byte not in b"\t\n\x0c\r\x1b" for byte in body[:512]):
        return b"application/octet-stream"
    return b"text/plain; charset=utf-8"


def reflection(method: bytes, path: bytes, body: bytes) -> Answer:
    """What albedo answers: ``POST /reflect`` with a JSON spec gets that response; anything else a 200
    without a body. A bad spec gets a 400 saying why."""
    if method != b"POST" or path.split(b"?", 1)[0].rstrip(b"/") != b"/reflect":
        return 200, [(b"Content-Length", b"0")], b""
    try:
        spec: Any = json.loads(body or b"{}")
    except ValueError:
        return _plain(400, b"Invalid JSON in request body")
    if not isinstance(spec, dict):
        return _plain(400, b"Invalid JSON in request body")
    status = spec.get("status") or 200
    if not isinstance(status, int) or not 100 <= status < 600:
        return _plain(400, b"Invalid status code")
    headers: list[tuple[bytes, bytes]] = []
    for name, value in (spec.get("headers") or {}).items():
        valid = isinstance(name, str) and isinstance(value, str) and name.isascii()
        if (
            valid
            and not {"\r", "\n"} & set(name + value)
            and name.lower() not in ("content-length", "transfer-encoding")
        ):
            headers.append((name.encode(), value.encode("utf-8")))
    text = spec.get("body")
    if isinstance(text, str) and text:
        out = text.encode("utf-8")
    elif isinstance(spec.get("encodedBody"), str) and spec["encodedBody"]:
        try:
            out = base64.b64decode(spec["encodedBody"], validate=True)
        except (binascii.Error, ValueError):
            return _plain(400, b"invalid base64 encoding of response body")
    else:
        out = b""
    if out and not any(name.lower() == b"content-type" for name, _ in headers):
        headers.append((b"Content-Type", sniff_content_type(out)))
    headers.append((b"Content-Length", str(len(out)).encode()))
    return status, headers, out


def _plain(status: int, text: bytes) -> Answer:
    return status, [(b"Content-Type", b"text/plain; charset=utf-8"), (b"Content-Length", str(len(text)).encode())], text


class _Protocol(asyncio.Protocol):
    """HTTP/1.1 with Content-Length bodies (what nginx sends it), keep-alive."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            lines = head.split(b"\r\n")
            method, target = [*lines[0].split(b" "), b"", b""][:2]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or b"0")
            if len(rest) < length:
                return
            body, self.buffer = rest[:length], rest[length:]
            status, headers, out = reflection(method, target, body)
            reason = _REASONS.get(status, b"Status")
            response = b"HTTP/1.1 %d %s\r\n" % (status, reason)
            response += b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers) + b"\r\n"
            assert self.transport is not None
            self.transport.write(response + (out if method != b"HEAD" else b""))


class ReflectOrigin:
    """The reflecting origin on ``127.0.0.1:port`` in a thread of its own (``start``/``stop``)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="reflect-origin")
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> ReflectOrigin:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            self._loop.create_server(_Protocol, "127.0.0.1", self.port), self._loop
        )
        self._server = future.result(10)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
