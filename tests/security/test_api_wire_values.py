"""Issue 10 item 3 at the API: values that end up on the wire are validated where they enter.

An Origin Rule's ``host_header`` of ``"www.a.test\\r\\n\\r\\nGET /SMUGGLED HTTP/1.1..."`` made the origin read
two requests; ``origin.host`` and ``sni.value`` took CR/LF too, and an SNI with a NUL or a 64-character
label crashed the request. Each is now a 400 with Cloudflare's body, naming the field and the problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from originlock.testing.api_env import ApiEnv, api_env

ORIGIN_PHASE = "/rulesets/phases/http_request_origin/entrypoint"
SMUGGLE = "www.a.test\r\n\r\nGET /SMUGGLED HTTP/1.1\r\nHost: www.b.test\r\n\r\n"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiEnv]:
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    with api_env(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "data") as env:
        yield env


def _route(api: ApiEnv, zone: str, params: dict[str, Any]) -> Any:
    rule = {"action": "route", "expression": "true", "action_parameters": params}
    return api.call("PUT", f"/zones/{zone}{ORIGIN_PHASE}", api.admin, {"rules": [rule]})


def _refused(r: Any, *words: str) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["success"] is False and body["result"] is None
    error: dict[str, Any] = body["errors"][0]
    assert all(w in error["message"] for w in words), (words, error)
    return error


def test_origin_rule_values_that_reach_the_wire(api: ApiEnv) -> None:
    zone = api.zone("a.test")
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"host_header": SMUGGLE}, ("host_header", "U+000D")),
        ({"host_header": "www.a.test\n"}, ("host_header", "U+000A")),
        ({"host_header": "www.a.test\x00"}, ("host_header", "U+0000")),
        ({"host_header": " www.a.test"}, ("host_header", "whitespace")),
        ({"host_header": "www.a.test:99999"}, ("host_header", "port")),
        ({"host_header": "www a.test"}, ("host_header", "hostname")),
        ({"origin": {"host": "origin.a.test\r\nX-Injected: 1"}}, ("origin.host", "U+000D")),
        ({"origin": {"host": "a..test"}}, ("origin.host", "empty label")),
        ({"sni": {"value": "www.a.test\r\n"}}, ("sni.value", "U+000D")),
        ({"sni": {"value": "www\x00.a.test"}}, ("sni.value", "U+0000")),
        ({"sni": {"value": "a" * 64 + ".a.test"}}, ("sni.value", "longer than 63")),
        ({"sni": {"value": "x." * 127 + "test"}}, ("sni.value", "253")),
    ]
    for params, words in cases:
        error = _refused(_route(api, zone, params), *words)
        assert error["source"] == {"pointer": "/rules/0/action_parameters"}, error
    # Nothing was stored.
    assert api.call("GET", f"/zones/{zone}{ORIGIN_PHASE}", api.admin).status_code == 404
    # What users do send is still accepted: names, IPs, a Host with a port, a 63-character label.
    for params in (
        {"host_header": "renamed.a.test"},
        {"host_header": "renamed.a.test:8443"},
        {"host_header": "[2001:db8::1]:8443"},
        {"origin": {"host": "origin.a.test", "port": 8443}},
        {"origin": {"host": "192.0.2.1"}},
        {"sni": {"value": "a" * 63 + ".a.test"}},
    ):
        assert _route(api, zone, params).status_code == 200, params


def test_a_rule_added_alone_is_checked_too(api: ApiEnv) -> None:
    zone = api.zone("a.test")
    ruleset = api.ok("PUT", f"/zones/{zone}{ORIGIN_PHASE}", {"rules": []})
    rule = {"action": "route", "expression": "true", "action_parameters": {"host_header": SMUGGLE}}
    r = api.call("POST", f"/zones/{zone}/rulesets/{ruleset['id']}/rules", api.admin, rule)
    assert _refused(r, "host_header")["source"] == {"pointer": "/action_parameters"}


def test_dns_zone_and_webhook_values(api: ApiEnv) -> None:
    zone = api.zone("a.test")
    records = f"/zones/{zone}/dns_records"
    for body in (
        {"type": "A", "name": "www\r\nX: y", "content": "192.0.2.1"},
        {"type": "A", "name": "a" * 64, "content": "192.0.2.1"},
        {"type": "CNAME", "name": "www", "content": "origin.test\r\nX: y"},
        {"type": "A", "name": "www", "content": "192.0.2.1\r\n1.2.3.4"},
    ):
        r = api.call("POST", records, api.admin, body)
        assert r.status_code == 400, (body, r.text)
    # Cloudflare's comment limit; a 200 MB one used to be stored.
    r = api.call("POST", records, api.admin, {"type": "A", "name": "c", "content": "192.0.2.1", "comment": "x" * 501})
    _refused(r, "/comment", "500")
    assert (
        api.call(
            "POST", records, api.admin, {"type": "A", "name": "c", "content": "192.0.2.1", "comment": "x" * 500}
        ).status_code
        == 200
    )
    r = api.call("POST", "/zones", api.admin, {"name": "evil.test\r\nX: y", "account": {"id": api.account_id}})
    assert r.status_code == 400
    hooks = f"/accounts/{api.account_id}/alerting/v3/destinations/webhooks"
    _refused(
        api.call("POST", hooks, api.admin, {"name": "w", "url": "https://h.test/x", "secret": "s\r\nX-Evil: 1"}),
        "secret",
        "U+000D",
    )
    _refused(api.call("POST", hooks, api.admin, {"name": "w", "url": "https://h.test/x\r\nX-Evil: 1"}), "url")
    assert (
        api.call(
            "POST", hooks, api.admin, {"name": "w", "url": "https://h.test/x", "secret": "s3cret value"}
        ).status_code
        == 200
    )
