"""The one response writer: every answer the edge gives goes through here to a :class:`VisitorStream`.

An origin's response and the edge's own (an error page, a WAF block, a redirect, a custom response) take
the same three steps: head, body pieces, end. A local answer is first made into the shape an origin's
response has (:func:`local_head`), so the stream's framing, hop-by-hop handling and CF-Ray are the same
for both, on HTTP/1.1 and HTTP/2 alike. ERROR is here too: before anything was sent, an
:class:`~originlock.errors.EdgeError` becomes its page; after, the response can only be cut short.
"""

from __future__ import annotations

from originlock.edge.stream import VisitorStream
from originlock.errors import EdgeError, UnsafeHeaderValue
from originlock.pipeline.builtin.error_pages import error_response
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import Respond
from originlock.proto.events import Headers, RequestReceived, ResponseReceived, lower_name
from originlock.proto.serialize import check_field
from originlock.tls.hsts import with_security_fields

__all__ = ["local_head", "send_error", "send_local", "start_response"]


def local_head(response: Respond) -> ResponseReceived:
    """``response`` as an origin's response head would be: its fields checked (they come from configuration
    and from the request: a CR, LF or NUL would let them start a new field or message) and a
    ``Content-Length`` for its body.

    Raises:
        UnsafeHeaderValue: a field holds CR, LF or NUL.
    """
    headers: Headers = []
    has_length = False
    for name, value in response.headers:
        check_field(name, value)
        if lower_name(name) == b"content-length":
            has_length = True
        headers.append((name, value))
    if not has_length:
        headers.append((b"Content-Length", str(len(response.body)).encode()))
    return ResponseReceived(response.status, b"", b"1.1", headers, True, "length")


def start_response(
    stream: VisitorStream, request: RequestReceived, ctx: RequestContext, response: ResponseReceived, keep_alive: bool
) -> bool:
    """RESPONSE_HEADERS: queue the head; returns whether the connection can stay open afterwards.

    Over HTTPS, the zone's security headers (HSTS, nosniff: ``security_header``) replace the origin's own
    fields of those names, on every answer alike."""
    route = ctx.route
    if route is not None and route.security_headers and ctx.scheme == "https":
        response.headers = with_security_fields(response.headers, route.security_headers)
    keep_alive = stream.send_head(response, request, ctx.ray_id, keep_alive)
    ctx.status = response.status  # once the head is queued: a head the stream refused leaves room for the error
    return keep_alive


def send_local(
    stream: VisitorStream, request: RequestReceived, ctx: RequestContext, response: Respond, keep_alive: bool
) -> bool:
    """Answer with a response the edge made. A body the visitor announced but that was not all received
    (or not read) means the connection cannot carry another request."""
    if not stream.discard_body() or response.close:
        keep_alive = False
    try:
        head = local_head(response)
    except UnsafeHeaderValue as exc:  # a configured response field holding CR/LF/NUL: never sent
        ctx.error_code, ctx.error_detail = exc.code, exc.message
        response = error_response(exc, ctx.ray_id, ctx.host)
        head = local_head(response)
    keep_alive = start_response(stream, request, ctx, head, keep_alive)
    if request.method != b"HEAD" and response.body:
        stream.send_data(response.body)
        ctx.bytes_sent = len(response.body)
    stream.send_end()
    stream.flush()
    return keep_alive


def send_error(
    stream: VisitorStream, request: RequestReceived, ctx: RequestContext, exc: EdgeError, keep_alive: bool
) -> bool:
    """ERROR: the 52x/1xxx page while nothing was sent yet; afterwards the response is cut short (False)."""
    ctx.error_code, ctx.error_detail = exc.code, exc.message
    if ctx.status:
        return False
    return send_local(stream, request, ctx, error_response(exc, ctx.ray_id, ctx.host), keep_alive)
