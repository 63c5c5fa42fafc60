"""One request, start to finish: the I/O phases of ``pipeline/phases.py``, in its order.

After the pure phases (``run_until_origin``, run by ``edge/fastpath.py``), ``proxy_request`` runs
ORIGIN_CONNECT (pool), REQUEST_BODY (streamed to the origin, ``100 Continue`` answered by the edge),
RESPONSE_HEADERS and RESPONSE_BODY (streamed back, re-framed), ERROR (the 52x/1xxx page while nothing
has been sent yet; afterwards the visitor connection is closed, never left half-answered) and LOG.
``edge/fastpath.py`` completes the common case (no body, reused origin connection, whole response in
one read) without a task and hands everything else over to ``proxy_request``.

Retry: a request without a body and with an idempotent method (RFC 9110 §9.2.2) that failed on a
*reused* origin connection before any response byte arrived is retried once on a new connection (the
origin closed the connection while it was idle).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from originlock.errors import EdgeError, UnsafeHeaderValue
from originlock.origin.connection import OriginConnection
from originlock.pipeline.builtin.error_pages import error_response
from originlock.pipeline.builtin.forwarding import visitor_response_head
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import Forward, Respond
from originlock.proto.events import BodyReceived, MessageEnded, RequestReceived, ResponseReceived
from originlock.proto.serialize import LAST_CHUNK, chunk, response_head
from originlock.tls.hsts import with_security_fields  # tls helper (issue 14): HSTS

if TYPE_CHECKING:
    from originlock.edge.downstream import DownstreamConnection
    from originlock.edge.server import EdgeState

__all__ = ["IDEMPOTENT", "failed", "new_context", "proxy_request", "request_consumed", "respond", "response_start"]

IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


class _VisitorGone(Exception):
    """The visitor closed the connection or stopped reading; nothing more can be sent."""


async def proxy_request(
    conn: DownstreamConnection,
    request: RequestReceived,
    ctx: RequestContext,
    forward: Forward,
    state: EdgeState,
    started: OriginConnection | None = None,
) -> bool:
    """ORIGIN_CONNECT .. LOG for a request the pure phases decided to forward, as a task (a request
    body to stream, no idle origin connection to reuse, or a hand-over from ``edge/fastpath.py`` with
    the head already written to the reused connection ``started``). Returns whether the visitor
    connection stays open for another request."""
    keep_alive = request.keep_alive
    try:
        replay: list[BodyReceived | MessageEnded] = []
        inspection = ctx.body_inspection
        if inspection is not None and request.body != "none":
            # Managed WAF rules read the body's first bytes before any origin connection is opened.
            ctx.body_inspection = None
            replay = await _body_prefix(conn, request, inspection.limit, state)
            decision = inspection(b"".join(e.data for e in replay if isinstance(e, BodyReceived)))
            if isinstance(decision, Respond):
                keep_alive = respond(conn, request, ctx, decision, keep_alive)
                state.log(ctx, request)
                return keep_alive and not conn.closed
        keep_alive = await _proxy(conn, request, ctx, forward, state, keep_alive, started=started, replay=replay)
    except _VisitorGone:
        keep_alive = False
    except EdgeError as exc:
        keep_alive = failed(conn, request, ctx, exc, keep_alive)
    state.log(ctx, request)
    return keep_alive and not conn.closed


def new_context(conn: DownstreamConnection, state: EdgeState) -> RequestContext:
    return RequestContext(
        ray_id=state.ray_id(),
        snapshot=state.snapshot(),
        scheme=conn.scheme,
        client_ip=conn.client_ip,
        client_port=conn.client_port,
        # Only the access log reads it (the request's duration): no clock read per request without one.
        started=time.monotonic() if state.logging else 0.0,
        sni=conn.sni,
        tls_version=conn.tls_version,
    )


def failed(
    conn: DownstreamConnection, request: RequestReceived, ctx: RequestContext, exc: EdgeError, keep_alive: bool
) -> bool:
    """ERROR: the 52x/1xxx page while nothing was sent yet, else cut the response short."""
    ctx.error_code, ctx.error_detail = exc.code, exc.message
    if ctx.status:
        return False  # the status line is out; all we can do is cut the response short
    return respond(conn, request, ctx, error_response(exc, ctx.ray_id, ctx.host), keep_alive)


def request_consumed(conn: DownstreamConnection, request: RequestReceived) -> bool:
    """Drop already-received body events of an unanswered request; True when its end was seen."""
    if conn.request_complete:  # taken with its end, never queued (the first ask answers)
        conn.request_complete = False
        return True
    while True:
        try:
            event = conn.next_event_nowait()
        except EdgeError:
            return False
        if event is None:
            return False
        if isinstance(event, MessageEnded):
            return True


def respond(
    conn: DownstreamConnection, request: RequestReceived, ctx: RequestContext, response: Respond, keep_alive: bool
) -> bool:
    """Send a locally generated response; a body the visitor announced but did not fully send (or that we
    did not read) means the connection cannot be reused."""
    if not request_consumed(conn, request):
        keep_alive = False
    keep_alive = keep_alive and not response.close
    try:
        head, body = _local_head(request, ctx, response, keep_alive)
    except UnsafeHeaderValue as exc:  # a configured response field holding CR/LF/NUL: never sent
        ctx.error_code, ctx.error_detail = exc.code, exc.message
        response = error_response(exc, ctx.ray_id, ctx.host)
        head, body = _local_head(request, ctx, response, keep_alive)
    conn.write(head + body)
    conn.flush()
    ctx.status = response.status
    ctx.bytes_sent = len(body)
    return keep_alive


def _local_head(
    request: RequestReceived, ctx: RequestContext, response: Respond, keep_alive: bool
) -> tuple[bytes, bytes]:
    headers = list(response.headers)
    if ctx.scheme == "https" and ctx.route is not None and ctx.route.security_headers:  # tls helper (issue 14): HSTS
        headers = with_security_fields(headers, ctx.route.security_headers)  # lead: into the one response writer
    if not any(name.lower() == b"content-length" for name, _ in headers):
        headers.append((b"Content-Length", str(len(response.body)).encode()))
    if not any(name.lower() == b"cf-ray" for name, _ in headers):
        headers.append((b"CF-Ray", ctx.ray_id.encode()))
    if not keep_alive:
        headers.append((b"Connection", b"close"))
    body = b"" if request.method == b"HEAD" else response.body
    return response_head(response.status, headers), body


async def _proxy(
    conn: DownstreamConnection,
    request: RequestReceived,
    ctx: RequestContext,
    forward: Forward,
    state: EdgeState,
    keep_alive: bool,
    *,
    started: OriginConnection | None = None,
    replay: list[BodyReceived | MessageEnded] | None = None,
) -> bool:
    """ORIGIN_CONNECT .. RESPONSE_BODY. Returns whether the visitor connection stays open.

    ``started``: a reused connection that already carries this request (no body); its response is
    awaited as if this function had written it.
    """
    retry_allowed = request.body == "none" and request.method in IDEMPOTENT
    head = forward.head
    timeouts = state.config.origin_timeouts
    attempt = 0
    while True:
        written = started is not None
        if started is not None:
            origin, reused, started = started, True, None
        else:
            origin, reused = await state.pool.acquire(forward.peer, fresh=attempt > 0)
            ctx.origin_reused = reused
        try:
            if not written:
                origin.start_exchange(request.method)
                origin.write(head)
                if request.body != "none":
                    await _send_body(conn, request, origin, timeouts.write, state, replay)
            response = await origin.next_event(timeouts.read)
        except EdgeError as exc:
            state.pool.release(origin, False)
            origin.close()
            if exc.retryable and retry_allowed and reused and attempt == 0:
                attempt += 1
                ctx.origin_retried = True
                continue
            raise
        except BaseException:
            state.pool.release(origin, False)
            raise
        break
    assert isinstance(response, ResponseReceived)
    try:
        keep_alive = await _send_response(conn, request, ctx, origin, response, state, keep_alive)
    except BaseException:
        state.pool.release(origin, False)
        raise
    state.pool.release(origin, origin.finish_exchange(response.keep_alive))
    return keep_alive


async def _send_body(
    conn: DownstreamConnection,
    request: RequestReceived,
    origin: OriginConnection,
    write_timeout: float,
    state: EdgeState,
    replay: list[BodyReceived | MessageEnded] | None = None,
) -> None:
    """REQUEST_BODY: stream the visitor's body to the origin (re-chunked when it came chunked), starting
    with the events the WAF's body inspection already read (``replay``)."""
    pending = list(replay or ())
    if request.expect_continue and not pending:
        conn.write(_CONTINUE)
        conn.flush()
    chunked = request.body == "chunked"
    while True:
        if pending:
            event: object = pending.pop(0)
        else:
            event = await _next_body_event(conn, state)
        if isinstance(event, BodyReceived):
            origin.write(chunk(event.data) if chunked else event.data)
            await origin.drain(write_timeout)
        elif isinstance(event, MessageEnded):
            if chunked:
                origin.write(LAST_CHUNK)
            return


async def _next_body_event(conn: DownstreamConnection, state: EdgeState) -> object:
    event = conn.next_event_nowait()
    if event is None:
        event = await conn.next_event(state.config.limits.body_timeout)
        if event is None:
            raise _VisitorGone()
    return event


async def _body_prefix(
    conn: DownstreamConnection, request: RequestReceived, limit: int, state: EdgeState
) -> list[BodyReceived | MessageEnded]:
    """Read body events until ``limit`` bytes or the end: at most one event past the limit is held."""
    if request.expect_continue:
        conn.write(_CONTINUE)
        conn.flush()
    events: list[BodyReceived | MessageEnded] = []
    size = 0
    while size < limit:
        event = await _next_body_event(conn, state)
        if isinstance(event, BodyReceived):
            events.append(event)
            size += len(event.data)
        elif isinstance(event, MessageEnded):
            events.append(event)
            break
    return events


async def _send_response(
    conn: DownstreamConnection,
    request: RequestReceived,
    ctx: RequestContext,
    origin: OriginConnection,
    response: ResponseReceived,
    state: EdgeState,
    keep_alive: bool,
) -> bool:
    """RESPONSE_HEADERS and RESPONSE_BODY."""
    keep_alive, rechunk = response_start(conn, request, ctx, response, keep_alive)
    read_timeout = state.config.origin_timeouts.read
    write_timeout = state.config.write_timeout
    sent = 0
    while True:
        event = origin.next_event_nowait()
        if event is None:
            if not await conn.drain(write_timeout):  # flushes what is queued before waiting
                ctx.bytes_sent = sent
                raise _VisitorGone()
            event = await origin.next_event(read_timeout)
        if isinstance(event, BodyReceived):
            data = event.data
            sent += len(data)
            conn.write(chunk(data) if rechunk else data)
        elif isinstance(event, MessageEnded):
            if rechunk:
                conn.write(LAST_CHUNK)
            conn.flush()
            ctx.bytes_sent = sent
            return keep_alive


def response_start(
    conn: DownstreamConnection,
    request: RequestReceived,
    ctx: RequestContext,
    response: ResponseReceived,
    keep_alive: bool,
) -> tuple[bool, bool]:
    """RESPONSE_HEADERS: queue the visitor's response head. Returns (keep_alive, re-chunk the body)."""
    framing = response.body
    http11 = request.version == b"1.1"
    rechunk = framing in ("chunked", "close") and http11
    if framing in ("chunked", "close") and not http11:
        keep_alive = False  # HTTP/1.0 visitor: the body ends when the connection closes
    if ctx.scheme == "https" and ctx.route is not None and ctx.route.security_headers:  # tls helper (issue 14): HSTS
        response.headers = with_security_fields(response.headers, ctx.route.security_headers)  # lead: response writer
    head = visitor_response_head(
        response, ray_id=ctx.ray_id, chunked=rechunk, close=not keep_alive, keep_alive_1_0=keep_alive and not http11
    )
    conn.write(head)
    ctx.status = response.status
    return keep_alive, rechunk
