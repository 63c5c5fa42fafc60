"""The dashboard's WafRecorder: the edge's own hook (called natively) and any other hook are recorded alike."""

from __future__ import annotations

import dataclasses

import pytest

from originlock.dashboard.waf_recorder import WafRecorder
from originlock.pipeline import RequestContext
from originlock.pipeline.builtin.waf import EdgeWaf
from originlock.pipeline.decision import CONTINUE, Decision, Respond
from originlock.proto.events import RequestReceived
from originlock.snapshot.model import Snapshot
from originlock.testing.pki import TestPki, make_route, make_snapshot
from originlock.waf import Action, Phase, Rule, compile_ruleset

PKI = TestPki()
APP = make_route("app.example.test")
BLOCK = Rule("blk", 'http.request.uri.path eq "/admin"', Action.BLOCK)
SNAPSHOT: Snapshot = dataclasses.replace(
    make_snapshot(PKI, APP),
    waf={
        APP.zone_id: {
            Phase.HTTP_REQUEST_FIREWALL_CUSTOM: (compile_ruleset(Phase.HTTP_REQUEST_FIREWALL_CUSTOM, [BLOCK]),)
        }
    },
)


class _Delegating:
    """A hook that is not an EdgeWaf (tests, or a wrapped hook): called through the WafHook protocol."""

    def __init__(self, inner: EdgeWaf) -> None:
        self.inner = inner

    def __call__(self, request: RequestReceived, ctx: RequestContext) -> Decision:
        return self.inner(request, ctx)


def _run(recorder: WafRecorder, target: bytes) -> tuple[Decision, RequestContext]:
    ctx = RequestContext("ray", SNAPSHOT, "https", "192.0.2.1", 1, 0.0)
    ctx.host, ctx.route = "app.example.test", APP
    request = RequestReceived(b"GET", target, b"1.1", [(b"Host", b"app.example.test")], True, "none", False)
    return recorder(request, ctx), ctx


@pytest.mark.parametrize("wrap", [False, True])
def test_blocks_are_recorded_and_passes_are_not(wrap: bool) -> None:
    edge_waf = EdgeWaf(lambda: 0.0, lambda: 0.0)
    recorder = WafRecorder(_Delegating(edge_waf) if wrap else edge_waf, lambda: 1.0)
    assert (recorder._edge_waf is edge_waf) is not wrap  # the native call, or the protocol's
    decision, _ = _run(recorder, b"/")
    assert decision is CONTINUE and recorder.activity.counts() == {}
    decision, ctx = _run(recorder, b"/admin")
    assert isinstance(decision, Respond) and ctx.waf is not None and ctx.waf.rule_id == "blk"
    assert recorder.activity.counts() == {(APP.zone_name, "block"): 1}
    [event] = recorder.activity.recent()
    assert (event.path, event.rule_id, event.at) == ("/admin", "blk", 1.0)
