"""RESPONSE_HEADERS with response rules: hold the start of the origin's body, let the WAF decide, then answer.

Only requests whose zone deploys response rules come here (``ctx.response_inspection`` set by the WAF
hook); :meth:`Exchange.respond <originlock.edge.exchange.Exchange.respond>` hands them over and every
other response keeps its path (the pooled fast path never gets here: :meth:`Exchange.start` sends such
requests to the task path). For HTTP/1.1 and HTTP/2 visitors alike: this speaks to the exchange's
:class:`~originlock.edge.stream.VisitorStream` through the one response writer.

1. The head arrived. If the inspection holds this body (text-like, not compressed), read body events until
   ``limit`` bytes or the end (at most one event past the limit is held; a Content-Length or chunked body,
   or one read until the origin closes, alike). Nothing is sent to the visitor meanwhile.
2. Call the inspection with the head and the held bytes (None when not held).
3. ``Respond`` (the exchange does this): the block page goes out through ``send_local``; the origin
   connection is closed (the rest of its body is never read), so it is not reused. Otherwise the head, the
   held events and then the rest of the body stream on as on the normal path.
"""

from __future__ import annotations

from originlock.origin.connection import OriginConnection
from originlock.pipeline.decision import Respond, ResponseInspection
from originlock.proto.events import BodyReceived, Event, MessageEnded, ResponseReceived

__all__ = ["hold_and_inspect"]


async def hold_and_inspect(
    origin: OriginConnection, first: Event, inspection: ResponseInspection, read_timeout: float
) -> tuple[Respond | None, list[Event]]:
    """Steps 1 and 2 of the module doc: the WAF's decision on the response that starts with ``first``
    (a ``Respond`` to answer with instead, or None), and the origin's events to pass on in order when it
    lets the response through (``first`` and the held ones)."""
    assert isinstance(first, ResponseReceived)
    held: list[Event] = [first]
    body: bytes | None = None
    if inspection.holds(first):
        size, limit, ended = 0, inspection.limit, False
        pieces: list[bytes] = []
        while size < limit and not ended:
            event = await origin.next_event(read_timeout)
            held.append(event)
            if isinstance(event, BodyReceived):
                pieces.append(event.data)
                size += len(event.data)
            elif isinstance(event, MessageEnded):
                ended = True
        body = b"".join(pieces)
    decision = inspection(first, body)
    if isinstance(decision, Respond):
        return decision, []
    return None, held
