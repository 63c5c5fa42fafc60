"""Issue 10 item 1: a zone-scoped token with tokens:edit minted an admin token, listed every token and revoked
unscoped ones. A token may create, see and manage only tokens within its own grant (api/authz.py rule 3)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from originlock.testing.api_env import ApiEnv, api_env


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiEnv]:
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    with api_env(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "data") as env:
        yield env


def _error(response: object) -> tuple[int, int, str]:
    r = response
    body = r.json()  # type: ignore[attr-defined]
    return r.status_code, body["errors"][0]["code"], body["errors"][0]["message"]  # type: ignore[attr-defined]


def test_zone_scoped_token_cannot_mint_an_admin_token(api: ApiEnv) -> None:
    a, b = api.zone("a.test"), api.zone("b.test")
    scoped = api.token(["tokens:edit"], [a])
    # The attack as sent: wider permissions and every zone.
    r = api.call("POST", "/user/tokens", scoped, {"name": "x", "permissions": ["*"], "zones": None})
    status, code, message = _error(r)
    assert (status, code) == (403, 10000) and "permission * is not granted" in message
    # Each way of widening, one at a time.
    for body, why in (
        ({"permissions": ["tokens:edit"], "zones": None}, "on some zones only"),
        ({"permissions": ["tokens:edit"], "zones": [b]}, "outside this token's zones"),
        ({"permissions": ["tokens:edit"], "zones": [a, b]}, "outside this token's zones"),
        ({"permissions": ["zone:read"], "zones": [a]}, "permission zone:read is not granted"),
        ({"permissions": ["*"], "zones": [a]}, "permission * is not granted"),
    ):
        r = api.call("POST", "/user/tokens", scoped, {"name": "x", **body})
        assert _error(r)[:2] == (403, 10000) and why in _error(r)[2], (body, r.text)
    # Nothing was created: only the admin and the scoped token exist.
    assert len(api.ok("GET", "/user/tokens")) == 2
    # Within its grant it still works, and the child works on zone a only.
    child = api.token(["tokens:edit"], [a], by=scoped)
    assert api.call("GET", "/user/tokens/verify", child).status_code == 200


def test_edit_implies_read_when_granting(api: ApiEnv) -> None:
    a = api.zone("a.test")
    dns_editor = api.token(["dns:edit", "tokens:edit"], [a])
    reader = api.token(["dns:read"], [a], by=dns_editor)
    assert api.call("GET", f"/zones/{a}/dns_records", reader).status_code == 200
    assert (
        api.call(
            "POST", f"/zones/{a}/dns_records", reader, {"type": "A", "name": "x", "content": "192.0.2.1"}
        ).status_code
        == 403
    )


def test_zone_scoped_token_lists_and_revokes_only_tokens_within_its_grant(api: ApiEnv) -> None:
    a, b = api.zone("a.test"), api.zone("b.test")
    scoped = api.token(["tokens:edit"], [a])
    other_zone = api.token(["dns:read"], [b])
    everywhere = api.token(["zone:read"])
    mine = api.token(["tokens:edit"], [a], by=scoped)
    listed = {t["id"] for t in api.ok("GET", "/user/tokens", headers=scoped)}
    every = (scoped, other_zone, everywhere, mine, api.admin)
    verify = {h["Authorization"]: api.ok("GET", "/user/tokens/verify", headers=h)["id"] for h in every}
    assert listed == {verify[scoped["Authorization"]], verify[mine["Authorization"]]}
    # Revoking the admin token, an unscoped token or another zone's: 404, as if it did not exist.
    for victim in (api.admin, everywhere, other_zone):
        r = api.call("DELETE", f"/user/tokens/{verify[victim['Authorization']]}", scoped)
        assert r.status_code == 404, r.text
        assert api.call("GET", "/user/tokens/verify", victim).status_code == 200  # still works
    # Its own child it may revoke.
    assert api.call("DELETE", f"/user/tokens/{verify[mine['Authorization']]}", scoped).status_code == 200
    assert api.call("GET", "/user/tokens/verify", mine).status_code == 401


def test_listing_needs_a_token_permission(api: ApiEnv) -> None:
    a = api.zone("a.test")
    assert api.call("GET", "/user/tokens", api.token(["ssl:edit"], [a])).status_code == 403
    assert api.call("GET", "/user/tokens", api.token(["tokens:read"], [a])).status_code == 200
    r = api.call(
        "POST",
        "/user/tokens",
        api.token(["tokens:read"], [a]),
        {"name": "x", "permissions": ["tokens:read"], "zones": [a]},
    )
    assert r.status_code == 403


def test_restricted_token_cannot_mint_a_less_restricted_one(api: ApiEnv) -> None:
    a = api.zone("a.test")
    soon = datetime.now(UTC) + timedelta(hours=1)
    limited = api.token(
        ["tokens:edit", "dns:read"],
        [a],
        expires_on=soon.isoformat(),
        condition={"request_ip": {"in": ["127.0.0.0/8"], "not_in": ["127.0.0.2/32"]}},
    )
    base = {"name": "x", "permissions": ["dns:read"], "zones": [a]}
    ip = {"request_ip": {"in": ["127.0.0.0/8"], "not_in": ["127.0.0.2/32"]}}
    later = (soon + timedelta(days=1)).isoformat()
    for extra, why in (
        ({"condition": ip}, "must expire no later"),
        ({"expires_on": later, "condition": ip}, "must expire no later"),
        ({"expires_on": soon.isoformat()}, "request_ip"),
        ({"expires_on": soon.isoformat(), "condition": {"request_ip": {"in": ["0.0.0.0/0"]}}}, "request_ip"),
        ({"expires_on": soon.isoformat(), "condition": {"request_ip": {"in": ["127.0.0.0/8"]}}}, "request_ip"),
    ):
        r = api.call("POST", "/user/tokens", limited, {**base, **extra})
        assert r.status_code == 403 and why in r.json()["errors"][0]["message"], (extra, r.text)
    narrower = {"in": ["127.0.0.1/32"], "not_in": []}
    r = api.call(
        "POST", "/user/tokens", limited, {**base, "expires_on": soon.isoformat(), "condition": {"request_ip": narrower}}
    )
    assert r.status_code == 200, r.text
