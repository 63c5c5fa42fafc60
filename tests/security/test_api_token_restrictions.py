"""Issue 10 item 7: ``expires_on`` in the past, ``not_before`` and ``condition.request_ip`` were accepted and not
enforced (an "expired" token worked). Now every request checks them, with Cloudflare's answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from originlock.testing.api_env import V4, ApiEnv, api_env

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> dict[str, datetime]:
    return {"now": START}


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: dict[str, datetime]) -> Iterator[ApiEnv]:
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    with api_env(
        f"sqlite:///{tmp_path / 'store.db'}",
        tmp_path / "data",
        clock=lambda: clock["now"],
        client=("198.51.100.7", 40000),
    ) as env:
        yield env


def _status(api: ApiEnv, headers: dict[str, str], path: str = "/zones") -> tuple[int, int | None]:
    r = api.call("GET", path, headers)
    errors = r.json()["errors"]
    return r.status_code, errors[0]["code"] if errors else None


def test_expired_token_is_refused(api: ApiEnv, clock: dict[str, datetime]) -> None:
    token = api.token(["zone:read"], expires_on=(START + timedelta(hours=1)).isoformat())
    assert _status(api, token) == (200, None)
    clock["now"] = START + timedelta(hours=1)
    assert _status(api, token) == (401, 1000)
    assert _status(api, token, "/user/tokens/verify") == (401, 1000)
    # The attack as sent: a token created already expired never works.
    past = api.token(["zone:read"], expires_on="2020-01-01T00:00:00Z")
    assert _status(api, past) == (401, 1000)
    listed = {t["id"]: t for t in api.ok("GET", "/user/tokens")}
    assert sorted(t["expires_on"] for t in listed.values() if t["expires_on"]) == [
        "2020-01-01T00:00:00Z",
        "2026-06-01T13:00:00Z",
    ]


def test_not_before_is_enforced(api: ApiEnv, clock: dict[str, datetime]) -> None:
    token = api.token(["zone:read"], not_before=(START + timedelta(minutes=5)).isoformat())
    assert _status(api, token) == (401, 1000)
    clock["now"] = START + timedelta(minutes=5)
    assert _status(api, token) == (200, None)
    verified = api.ok("GET", "/user/tokens/verify", headers=token)
    assert verified["not_before"] == "2026-06-01T12:05:00Z" and verified["status"] == "active"


def _ip_token(api: ApiEnv, ips: dict[str, Any]) -> dict[str, str]:
    return api.token(["zone:read"], condition={"request_ip": ips})


def test_request_ip_condition(api: ApiEnv) -> None:
    # The test client connects from 198.51.100.7.
    assert _status(api, _ip_token(api, {"in": ["198.51.100.0/24"]})) == (200, None)
    assert _status(api, _ip_token(api, {"in": ["203.0.113.0/24", "2001:db8::/32"]})) == (403, 9109)
    assert _status(api, _ip_token(api, {"in": ["198.51.100.0/24"], "not_in": ["198.51.100.7/32"]})) == (403, 9109)
    assert _status(api, _ip_token(api, {"not_in": ["198.51.100.0/25"]})) == (403, 9109)
    assert _status(api, _ip_token(api, {"not_in": ["198.51.100.128/25"]})) == (200, None)
    r = api.call("GET", "/zones", _ip_token(api, {"in": ["203.0.113.0/24"]}))
    assert "198.51.100.7" in r.json()["errors"][0]["message"]


def test_bad_restrictions_are_400(api: ApiEnv) -> None:
    base = {"name": "t", "permissions": ["zone:read"]}
    for extra, words in (
        ({"condition": {"request_ip": {"in": ["300.1.1.1/8"]}}}, "condition.request_ip.in"),
        ({"condition": {"request_ip": {"not_in": ["nope"]}}}, "condition.request_ip.not_in"),
        ({"expires_on": "tomorrow"}, "/expires_on"),
        ({"expires_on": "2026-01-01T00:00:00"}, "/expires_on"),  # no time zone: ambiguous
        ({"not_before": "2026-02-01T00:00:00Z", "expires_on": "2026-01-01T00:00:00Z"}, "later than not_before"),
    ):
        r = api.call("POST", "/user/tokens", api.admin, {**base, **extra})
        assert r.status_code == 400 and words in r.json()["errors"][0]["message"], (extra, r.text)


def test_restrictions_apply_before_the_body_is_read(api: ApiEnv, clock: dict[str, datetime]) -> None:
    zone = api.zone("a.test")
    token = api.token(["dns:edit"], expires_on=(START + timedelta(seconds=1)).isoformat())
    clock["now"] = START + timedelta(seconds=2)
    r = api.client.post(f"{V4}/zones/{zone}/dns_records", headers=token, content=b"{not json")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == 1000
