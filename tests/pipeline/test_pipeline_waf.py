"""The WAF phase with plain values: request fields, verdicts to responses, Origin Rules in ORIGIN_SELECT."""

from __future__ import annotations

import dataclasses
import json
import pickle
import time

import pytest

from originlock.pipeline import Forward, PipelineSettings, RequestContext, Respond, run_until_origin
from originlock.pipeline.builtin.waf import EdgeWaf, request_fields
from originlock.pipeline.builtin.waf_pages import block_response
from originlock.proto.events import RequestReceived
from originlock.proto.http1 import RequestParser
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.waf import Action, BlockResponse, Phase, RouteOverride, Rule, Verdict, compile_ruleset

PKI = TestPki()
SETTINGS = PipelineSettings(origin_https_port=8443, origin_http_port=8080)
APP, OTHER = make_route("app.example.test"), make_route("b.example.test", "10.0.0.2")


def _request(target: bytes = b"/x", headers: list[tuple[bytes, bytes]] | None = None) -> RequestReceived:
    return RequestReceived(
        b"GET", target, b"1.1", [(b"Host", b"app.example.test"), *(headers or [])], True, "none", False
    )


def _ctx(**phases: list[Rule]) -> RequestContext:
    snapshot = make_snapshot(PKI, APP, OTHER)
    compiled = {Phase(name): (compile_ruleset(Phase(name), rules),) for name, rules in phases.items()}
    snapshot = dataclasses.replace(snapshot, waf={APP.zone_id: compiled})
    return RequestContext("ray-OLK", snapshot, "https", "192.0.2.7", 1, 0.0, tls_version="TLSv1.3")


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [(b"/a/b?x=1", "/a/b", "x=1"), (b"http://h.test/p?q", "/p", "q"), (b"https://h.test?q", "/", "q"), (b"*", "/", "")],
)
def test_request_fields_split_the_target(target: bytes, path: str, query: str) -> None:
    ctx = _ctx()
    ctx.host = "app.example.test"
    fields = request_fields(_request(target), ctx, 1.5)
    assert (fields.path, fields.query, fields.ip, fields.ssl, fields.timestamp) == (path, query, "192.0.2.7", True, 1.5)
    assert fields.extra["cf.ray_id"] == b"ray-OLK" and fields.extra["cf.tls_version"] == b"TLSv1.3"


@pytest.mark.parametrize(
    ("accept", "ctype"),
    [
        (None, b"text/html; charset=utf-8"),
        (b"application/json", b"application/json"),
        (b"text/xml;q=0.9, */*", b"application/xml"),
        (b"text/plain", b"text/plain; charset=utf-8"),
        (b"image/png", b"text/html; charset=utf-8"),
    ],
)
def test_default_pages_follow_accept(accept: bytes | None, ctype: bytes) -> None:
    response = block_response(Verdict(Action.BLOCK, "r", Phase.HTTP_REQUEST_FIREWALL_CUSTOM), accept, "ray-1", "h")
    assert response.status == 403 and (b"Content-Type", ctype) in response.headers and b"1020" in response.body
    assert b"ray-1" in response.body


def test_rate_limit_custom_and_challenge_responses() -> None:
    limited = block_response(Verdict(Action.BLOCK, "r", Phase.HTTP_RATELIMIT), b"application/json", "ray", "h")
    assert limited.status == 429 and json.loads(limited.body)["error_code"] == 1015
    custom = Verdict(
        Action.BLOCK, "r", Phase.HTTP_REQUEST_FIREWALL_CUSTOM, BlockResponse(418, "{}", "application/json")
    )
    assert block_response(custom, None, "ray", "h").body == b"{}"
    challenged = block_response(Verdict(Action.JS_CHALLENGE, "r", Phase.HTTP_REQUEST_FIREWALL_CUSTOM), None, "ray", "h")
    assert challenged.status == 403 and (b"cf-mitigated", b"challenge") in challenged.headers


def test_hook_blocks_and_records_the_verdict() -> None:
    waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    ctx = _ctx(
        http_request_firewall_custom=[
            Rule("log", "true", Action.LOG),
            Rule("b", 'http.request.uri.path eq "/x"', Action.BLOCK),
        ]
    )
    decision = run_until_origin(_request(), ctx, SETTINGS, waf)
    assert isinstance(decision, Respond) and decision.status == 403 and ctx.peer is None
    assert ctx.waf is not None and [m.rule_id for m in ctx.waf.matches] == ["log", "b"]
    # Zones without rules skip the WAF entirely.
    plain = _ctx()
    assert isinstance(run_until_origin(_request(), plain, SETTINGS, waf), Forward) and plain.waf is None
    assert isinstance(pickle.loads(pickle.dumps(EdgeWaf(time.monotonic, time.time))), EdgeWaf)  # --workers


def test_origin_rules_override_address_port_sni_and_host() -> None:
    waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    params = {"origin": {"host": "b.example.test", "port": 9443}, "host_header": "renamed.test"}
    ctx = _ctx(http_request_origin=[Rule("o", "true", Action.ROUTE, action_parameters=params)])
    forward = run_until_origin(_request(), ctx, SETTINGS, waf)
    assert isinstance(forward, Forward)
    peer = forward.peer
    assert (peer.host, peer.port, peer.sni) == ("10.0.0.2", 9443, "renamed.test")  # SNI follows host_header
    head = RequestParser().feed(forward.head)[0]
    assert isinstance(head, RequestReceived)
    assert [v for k, v in head.headers if k.lower() == b"host"] == [b"renamed.test"]
    assert ctx.origin_rule_ids == ("o",)

    plain = _ctx()
    plain_peer = run_until_origin(_request(), plain, SETTINGS, waf)
    assert isinstance(plain_peer, Forward) and plain_peer.peer.pool_key() != peer.pool_key()
    sni_only = _ctx()
    sni_only.origin_override = RouteOverride(sni="other.test", host_header="renamed.test")
    sni_peer = run_until_origin(_request(), sni_only, SETTINGS)
    assert isinstance(sni_peer, Forward) and sni_peer.peer.sni == "other.test"
    assert sni_peer.peer.pool_key() != plain_peer.peer.pool_key()  # same address and port, other SNI


def test_request_fields_fills_every_field_of_the_dataclass() -> None:
    from originlock.pipeline.builtin.waf import FILLED_FIELDS
    from originlock.waf import RequestFields

    assert tuple(f.name for f in dataclasses.fields(RequestFields)) == FILLED_FIELDS
    ctx = _ctx()
    ctx.host = "app.example.test"
    fields = request_fields(_request(b"/p?q=1", [(b"User-Agent", b"ua")]), ctx, 2.0)
    built = RequestFields(
        method="GET",
        host="app.example.test",
        path="/p",
        query="q=1",
        headers=((b"Host", b"app.example.test"), (b"User-Agent", b"ua")),
        ip="192.0.2.7",
        scheme="https",
        ssl=True,
        http_version="HTTP/1.1",
        timestamp=2.0,
        extra={"cf.ray_id": b"ray-OLK", "cf.tls_version": b"TLSv1.3"},
    )
    assert fields == built and hash(fields.headers) == hash(built.headers)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fields.host = "other"  # type: ignore[misc]
