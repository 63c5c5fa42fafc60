"""Phase RESPONSE_HEADERS (WAF): the managed rules' response phase, ``http_response_firewall_managed``.

Theory of operation. For a zone whose response entry point executes the OWASP ruleset, the WAF hook plans
the execution at the request headers (the entry point's expressions see the request's fields) and leaves a
:class:`ManagedResponse` on ``ctx.response_inspection``; the request phases hand it their CRS transaction
(its TX: paranoia level, scores, ``ctl`` removals). At the origin's response head the exchange asks
:meth:`ManagedResponse.holds`: the body is held for inspection when it is text-like (ModSecurity's default
``SecResponseBodyMimeType``: ``text/plain text/html text/xml``) and not compressed (the CRS skips compressed
bodies, rules 950010-956010); the exchange then reads its first ``limit`` bytes (ModSecurity's recommended
``SecResponseBodyLimit``, 512 KB, with ``ProcessPartial``: a longer body is inspected up to the limit and
streamed on) and calls the inspection. Other responses are evaluated at the head alone (``RESPONSE_BODY``
is then empty, as in ModSecurity), so status and header rules still apply and no byte waits.

A terminating verdict (959100, the outbound anomaly score reached its threshold, or a rule overridden to
``block``) is answered with the WAF's block page: nothing of the origin's response reaches the visitor.
"""

from __future__ import annotations

from typing import Final

from originlock.pipeline.builtin.waf_pages import block_response
from originlock.pipeline.context import RequestContext
from originlock.pipeline.decision import CONTINUE, Decision
from originlock.proto.events import ResponseReceived
from originlock.waf import FieldValues, Verdict
from originlock.waf.managed.phase import ManagedPlan, request_of, run_response
from originlock.waf.managed.transaction import HttpResponse, Transaction

__all__ = ["DEFAULT_RESPONSE_BODY_LIMIT", "DEFAULT_RESPONSE_TYPES", "ManagedResponse", "merge_response"]

#: ModSecurity's recommended ``SecResponseBodyLimit`` (modsecurity.conf-recommended, 512 KB), processed
#: partially beyond. Cloudflare's response-side detection reads up to 1 MB, off the response path.
DEFAULT_RESPONSE_BODY_LIMIT: Final = 512 * 1024
#: ModSecurity's default ``SecResponseBodyMimeType``. JSON and other types are evaluated at the head alone.
DEFAULT_RESPONSE_TYPES: Final = frozenset({b"text/plain", b"text/html", b"text/xml"})


def merge_response(request: Verdict | None, response: Verdict) -> Verdict:
    """The request's verdict followed by the response phase's (the access log shows both)."""
    if request is None:
        return response
    terminated = response.action is not None
    return Verdict(
        response.action if terminated else request.action,
        response.rule_id if terminated else request.rule_id,
        response.phase if terminated else request.phase,
        response.response if terminated else request.response,
        request.matches + response.matches,
        request.skipped_phases,
        request.skipped_products,
        request.score,
        response.outbound_score,
    )


class ManagedResponse:
    """The response phase of one request, planned at its headers."""

    __slots__ = ("accept", "ctx", "limit", "plan", "transaction", "types", "values")

    def __init__(
        self,
        plan: ManagedPlan,
        values: FieldValues,
        ctx: RequestContext,
        accept: bytes | None,
        limit: int = DEFAULT_RESPONSE_BODY_LIMIT,
        types: frozenset[bytes] = DEFAULT_RESPONSE_TYPES,
    ) -> None:
        self.plan = plan
        self.values = values
        self.ctx = ctx
        self.accept = accept
        self.limit = limit
        self.types = types
        #: The request phases' CRS transaction, when they ran the CRS (set by the WAF hook).
        self.transaction: Transaction | None = None

    def holds(self, response: ResponseReceived) -> bool:
        if response.body == "none" or self.limit <= 0:
            return False
        media = b""
        for name, value in response.headers:
            lower = name.lower()
            if lower == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
                return False
            if lower == b"content-type":
                media = value.split(b";", 1)[0].strip().lower()
        return media in self.types

    def __call__(self, response: ResponseReceived, body: bytes | None) -> Decision:
        seen = HttpResponse(
            response.status,
            b"HTTP/" + response.version,
            tuple(response.headers),
            body[: self.limit] if body is not None else None,
        )
        t = self.transaction
        verdict = run_response(self.plan, seen, t.request if t is not None else request_of(self.values), t)
        ctx = self.ctx
        ctx.waf = merge_response(ctx.waf, verdict)
        if not verdict.terminated:
            return CONTINUE
        return block_response(verdict, self.accept, ctx.ray_id, ctx.host)
