"""The one-pass head builders send exactly what the list-based rewrites describe, for any message.

``origin_request_head`` / ``visitor_response_head`` are what the edge sends; ``origin_request_headers`` /
``visitor_response_headers`` (+ ``override_host``) are the readable reference. Hypothesis draws field lists
mixing hop-by-hop fields, spoofable ``CF-*`` fields, ``X-Forwarded-For``, ``Host``, framing fields and
``Connection`` values that name other fields, in any case and order.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from originlock.pipeline.builtin.forwarding import (
    origin_request_head,
    origin_request_headers,
    override_host,
    visitor_response_head,
    visitor_response_headers,
)
from originlock.proto.events import RequestReceived, ResponseReceived
from originlock.proto.http1 import ResponseParser
from originlock.proto.serialize import request_head, response_head

NAMES = [
    b"Host", b"host", b"Connection", b"Keep-Alive", b"Transfer-Encoding", b"TE", b"Upgrade", b"Expect",
    b"Content-Length", b"X-Forwarded-For", b"x-forwarded-for", b"X-Forwarded-Proto", b"CF-Ray", b"cf-visitor",
    b"CF-Connecting-IP", b"Accept", b"X-Secret", b"Server", b"Date", b"Proxy-Connection", b"Trailer", b"Close",
]  # fmt: skip
VALUES = [b"", b"a", b"10.0.0.1", b"keep-alive", b"close", b"x-secret", b"X-Secret, Accept", b"chunked", b"3"]

fields = st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=8)


@given(
    headers=fields,
    body=st.sampled_from(["none", "length", "chunked"]),
    scheme=st.sampled_from(["http", "https"]),
    client_ip=st.sampled_from(["192.0.2.1", "2001:db8::1"]),
    host=st.sampled_from([None, "renamed.test"]),
    # GET's request line is written in fewer parts than other methods' (serialize.start_request): the Host
    # override goes in after it either way.
    method=st.sampled_from([b"GET", b"POST"]),
)
def test_origin_request_head_matches_the_reference(
    headers: list[tuple[bytes, bytes]], body: str, scheme: str, client_ip: str, host: str | None, method: bytes
) -> None:
    if body == "length" and not any(n.lower() == b"content-length" for n, _ in headers):
        headers = [*headers, (b"Content-Length", b"5")]
    request = RequestReceived(method, b"/p?q", b"1.1", headers, True, body, False)
    reference = origin_request_headers(request, client_ip=client_ip, scheme=scheme, ray_id="r-OLK")
    if host is not None:
        reference = override_host(reference, host)
    built = origin_request_head(request, client_ip=client_ip, scheme=scheme, ray_id="r-OLK", host=host)
    assert built == request_head(method, b"/p?q", reference)


@given(
    headers=fields,
    chunked=st.booleans(),
    close=st.booleans(),
    keep_alive_1_0=st.booleans(),
    reason=st.sampled_from([b"OK", b""]),
)
def test_visitor_response_head_matches_the_reference(
    headers: list[tuple[bytes, bytes]], chunked: bool, close: bool, keep_alive_1_0: bool, reason: bytes
) -> None:
    response = ResponseReceived(200, reason, b"1.1", headers, True, "length")
    reference = visitor_response_headers(response, ray_id="r-OLK", chunked=chunked, close=close)
    if keep_alive_1_0:
        reference.append((b"Connection", b"keep-alive"))
    built = visitor_response_head(response, ray_id="r-OLK", chunked=chunked, close=close, keep_alive_1_0=keep_alive_1_0)
    assert built == response_head(200, reference, reason)


def test_forwarded_fields_are_per_visitor_address_and_scheme() -> None:
    """The serialised forwarded fields are cached by address: two visitors never share each other's."""
    request = RequestReceived(b"GET", b"/", b"1.1", [(b"Host", b"a.test")], True, "none", False)
    for ip, scheme in [("192.0.2.1", "https"), ("192.0.2.2", "https"), ("192.0.2.1", "http")] * 2:
        head = origin_request_head(request, client_ip=ip, scheme=scheme, ray_id="r")
        assert f"CF-Connecting-IP: {ip}\r\n".encode() in head and f"X-Forwarded-For: {ip}\r\n".encode() in head
        assert f'CF-Visitor: {{"scheme":"{scheme}"}}'.encode() in head


#: How a field line may be spelled on the wire: only ``": "`` gives the parser's raw field lines (the head
#: writer's copy path); the others take the field-by-field path. Both must send the reference's bytes.
SEPARATORS = [b": ", b": ", b":", b":  ", b":\t"]
STATUS_LINES = [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 \r\n", b"HTTP/1.1 200\r\n", b"HTTP/1.1 200  Fine \r\n"]
#: Framing fields are the parser's business (tests/proto): here one Content-Length, anywhere.
WIRE_NAMES = [n for n in NAMES if n.lower() not in (b"content-length", b"transfer-encoding")]


@given(
    fields=st.lists(
        st.tuples(st.sampled_from(WIRE_NAMES), st.sampled_from(SEPARATORS), st.sampled_from(VALUES)), max_size=8
    ),
    length_at=st.integers(0, 8),
    status_line=st.sampled_from(STATUS_LINES),
    split=st.sampled_from([None, 10, 40]),
    chunked=st.booleans(),
    close=st.booleans(),
    keep_alive_1_0=st.booleans(),
)
def test_visitor_head_from_the_wire_matches_the_reference(
    fields: list[tuple[bytes, bytes, bytes]],
    length_at: int,
    status_line: bytes,
    split: int | None,
    chunked: bool,
    close: bool,
    keep_alive_1_0: bool,
) -> None:
    """A response parsed from the wire, in one read (the copy of its field lines) or in two: the visitor's
    head is the reference serialisation of the reference field rewrite, whatever the spelling."""
    lines = [name + separator + value + b"\r\n" for name, separator, value in fields]
    lines.insert(length_at, b"Content-Length: 2\r\n")
    wire = status_line + b"".join(lines) + b"\r\nok"
    if split is not None and split >= len(wire):
        split = None  # a short response is one read (a transport never hands over an empty one)
    parser = ResponseParser()
    parser.start(b"GET")
    events = parser.feed(wire) if split is None else parser.feed(wire[:split]) + parser.feed(wire[split:])
    response = events[0]
    assert isinstance(response, ResponseReceived)
    # A status line without the space before its (empty) reason is one byte off the offsets assumed.
    canonical = status_line != b"HTTP/1.1 200\r\n" and all(separator == b": " for _, separator, _ in fields)
    assert bool(response.raw_fields) == (canonical and split is None)
    reference = visitor_response_headers(response, ray_id="r-OLK", chunked=chunked, close=close)
    if keep_alive_1_0:
        reference.append((b"Connection", b"keep-alive"))
    built = visitor_response_head(response, ray_id="r-OLK", chunked=chunked, close=close, keep_alive_1_0=keep_alive_1_0)
    assert built == response_head(200, reference, response.reason)
    response.headers = list(response.headers)  # fields replaced (as edge/responses.py does): no copy
    assert (
        visitor_response_head(response, ray_id="r-OLK", chunked=chunked, close=close, keep_alive_1_0=keep_alive_1_0)
        == built
    )


def test_connection_close_alone_keeps_the_one_pass_head(monkeypatch: pytest.MonkeyPatch) -> None:
    """An origin that closes after each response says ``Connection: close``: an option, no field to remove,
    so the head is built in one pass (the general path checked every field again: ≈ 40k instructions per
    request with a new origin connection each). A field that is called ``close`` is still removed."""
    import originlock.pipeline.builtin.forwarding as forwarding

    fields = [(b"Server", b"nginx"), (b"Connection", b"close"), (b"Content-Length", b"3")]
    response = ResponseReceived(200, b"OK", b"1.1", fields, False, "length")
    expected = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\nCF-Ray: r-OLK\r\n\r\n"

    def general_path(*_: object, **__: object) -> bytes:
        raise AssertionError("the general path, for a Connection field that names no field")

    with monkeypatch.context() as patched:  # interpreted only: compiled, the call is bound at build time
        patched.setattr(forwarding, "response_head", general_path)
        assert visitor_response_head(response, ray_id="r-OLK", chunked=False, close=False) == expected
    named = ResponseReceived(200, b"OK", b"1.1", [*fields, (b"Close", b"x")], False, "length")
    assert visitor_response_head(named, ray_id="r-OLK", chunked=False, close=False) == expected


def test_visitor_connection_close_keeps_the_one_pass_request_head(monkeypatch: pytest.MonkeyPatch) -> None:
    """A visitor that closes after one request sends ``Connection: close``: the request head is built in one
    pass too (the general path cost ≈ 48k instructions per request in the new-visitor shape,
    docs/performance.md, issue 11, visitor6). A field that is called ``close`` is still removed."""
    import originlock.pipeline.builtin.forwarding as forwarding

    fields = [(b"Host", b"a.test"), (b"Connection", b"close"), (b"Accept", b"*/*")]
    request = RequestReceived(b"GET", b"/", b"1.1", fields, False, "none", False)
    expected = (
        b"GET / HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\n"
        b'CF-Connecting-IP: 192.0.2.1\r\nCF-Visitor: {"scheme":"https"}\r\nCF-Ray: r-OLK\r\n\r\n'
    )

    def general_path(*_: object, **__: object) -> bytes:
        raise AssertionError("the general path, for a Connection field that names no field")

    with monkeypatch.context() as patched:  # interpreted only: compiled, the call is bound at build time
        patched.setattr(forwarding, "request_head", general_path)
        assert origin_request_head(request, client_ip="192.0.2.1", scheme="https", ray_id="r-OLK") == expected
    named = RequestReceived(b"GET", b"/", b"1.1", [*fields, (b"Close", b"x")], False, "none", False)
    assert origin_request_head(named, client_ip="192.0.2.1", scheme="https", ray_id="r-OLK") == expected


ADDRESSES = ["192.0.2.1", "192.0.2.2", "2001:db8::1"]


@given(visits=st.lists(st.tuples(st.sampled_from(ADDRESSES), st.booleans(), st.booleans()), max_size=12))
def test_the_last_tail_memo_never_pairs_an_address_with_anothers_tail(visits: list[tuple[str, bool, bool]]) -> None:
    """Connections alternate (as they do under load): each request's forwarded fields name its own address and
    scheme, whether its strings are the objects of an earlier request (the memo's identity hit) or equal copies."""
    for ip, https, copied in visits:
        client_ip = "".join(list(ip)) if copied else ip  # a copy: a new object with the same text
        scheme = "https" if https else "http"
        head = origin_request_head(
            RequestReceived(b"GET", b"/", b"1.1", [(b"Host", b"a.test")], False, "none", False),
            client_ip=client_ip, scheme=scheme, ray_id="r",
        )  # fmt: skip
        assert f"X-Forwarded-For: {ip}\r\n".encode() in head
        assert f"CF-Connecting-IP: {ip}\r\n".encode() in head
        assert f'CF-Visitor: {{"scheme":"{scheme}"}}\r\n'.encode() in head
