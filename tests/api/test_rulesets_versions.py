"""Ruleset version history over raw HTTP (both stores): every write keeps a version, old versions read back
with their rules, deleting versions, and nothing left behind by dry runs or deleted rulesets and zones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from tests.api.conftest import ApiEnv

from originlock.store import schema

CUSTOM = "http_request_firewall_custom"
RULE = {"action": "block", "expression": 'http.request.uri.path eq "/admin"', "ref": "admin"}


def _base(zone: str) -> str:
    return f"/client/v4/zones/{zone}/rulesets"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["result"] if status == 200 else None


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["result"] is None and len(body["errors"]) == 1
    return body["errors"][0]  # type: ignore[no-any-return]


def _kept(api: ApiEnv, **where: str) -> list[tuple[str, int]]:
    t = schema.ruleset_versions
    with api.store.read() as conn:
        query = select(t.c.ruleset_id, t.c.version).where(*(t.c[k] == v for k, v in where.items()))
        return [(r.ruleset_id, r.version) for r in conn.execute(query.order_by(t.c.version))]


def test_every_write_keeps_a_version(api: ApiEnv) -> None:
    zone = api.zone()
    base, get = _base(zone), api.client.get
    entry = f"{base}/phases/{CUSTOM}/entrypoint"
    v1 = _ok(api.client.put(entry, json={"rules": [RULE], "description": "first"}, headers=api.admin))
    rs = v1["id"]
    admin_id = v1["rules"][0]["id"]
    v2 = _ok(api.client.post(f"{base}/{rs}/rules", json={"action": "log", "expression": "ssl"}, headers=api.admin))
    log_id = v2["rules"][1]["id"]
    body = {"action": "log", "expression": "not ssl", "description": "edited"}
    v3 = _ok(api.client.patch(f"{base}/{rs}/rules/{log_id}", json=body, headers=api.admin))
    v4 = _ok(api.client.delete(f"{base}/{rs}/rules/{admin_id}", headers=api.admin))
    v5 = _ok(api.client.put(f"{base}/{rs}", json={"rules": [], "description": "emptied"}, headers=api.admin))
    states = [v1, v2, v3, v4, v5]
    assert [s["version"] for s in states] == ["1", "2", "3", "4", "5"]

    # Dry runs of every kind of write leave no version behind.
    dry = "?dry_run=true"
    assert _ok(api.client.put(entry + dry, json={"rules": [RULE]}, headers=api.admin)) is None
    assert _ok(api.client.put(f"{base}/{rs}{dry}", json={"rules": [RULE]}, headers=api.admin)) is None
    assert _ok(api.client.post(f"{base}/{rs}/rules{dry}", json=RULE, headers=api.admin)) is None
    _ok(api.client.delete(f"{base}/{rs}{dry}", headers=api.admin), 204)

    # The list: every version, newest first, as ruleset objects without rules; same for the entry point.
    listed = _ok(get(f"{base}/{rs}/versions", headers=api.admin))
    assert [v["version"] for v in listed] == ["5", "4", "3", "2", "1"]
    for item, state in zip(listed, reversed(states), strict=True):
        assert item == {k: v for k, v in state.items() if k != "rules"}
    assert _ok(get(f"{entry}/versions", headers=api.admin)) == listed
    assert _kept(api, ruleset_id=rs) == [(rs, n) for n in range(1, 6)]

    # Each version reads back as it was written, rules included, on both paths.
    for state in states:
        n = state["version"]
        assert _ok(get(f"{base}/{rs}/versions/{n}", headers=api.admin)) == state
        assert _ok(get(f"{entry}/versions/{n}", headers=api.admin)) == state
    assert _ok(get(f"{base}/{rs}", headers=api.admin)) == v5

    # POST /rulesets keeps version 1 too.
    created = _ok(api.client.post(base, json={"name": "origin", "phase": "http_request_origin"}, headers=api.admin))
    assert _ok(get(f"{base}/{created['id']}/versions", headers=api.admin)) == [
        {k: v for k, v in created.items() if k != "rules"}
    ]


def test_delete_versions(api: ApiEnv) -> None:
    zone = api.zone()
    base = _base(zone)
    rs = _ok(api.client.put(f"{base}/phases/{CUSTOM}/entrypoint", json={"rules": [RULE]}, headers=api.admin))["id"]
    for _ in range(2):
        _ok(api.client.post(f"{base}/{rs}/rules", json={"action": "log", "expression": "ssl"}, headers=api.admin))
    url = f"{base}/{rs}/versions"

    latest = _error(api.client.delete(f"{url}/3", headers=api.admin), 400)
    assert "3 is the current version" in latest["message"] and "cannot be deleted" in latest["message"]
    _ok(api.client.delete(f"{url}/2?dry_run=true", headers=api.admin), 204)
    assert [v["version"] for v in _ok(api.client.get(url, headers=api.admin))] == ["3", "2", "1"]
    _ok(api.client.delete(f"{url}/2", headers=api.admin), 204)
    assert [v["version"] for v in _ok(api.client.get(url, headers=api.admin))] == ["3", "1"]
    gone = _error(api.client.get(f"{url}/2", headers=api.admin), 404)
    assert gone["code"] == 10003 and "version 2 of ruleset" in gone["message"]
    assert _error(api.client.delete(f"{url}/2", headers=api.admin), 404)["code"] == 10003
    assert _error(api.client.get(f"{url}/4", headers=api.admin), 404)["code"] == 10003
    assert _error(api.client.delete(f"{url}/4", headers=api.admin), 404)["code"] == 10003

    # Bad numbers are 400 (never 500, whatever the backend's integer width), unknown rulesets 404.
    for bad in ("abc", "0", "-1", "1.0", "2147483648", "9" * 5000, "%C2%B2"):
        for method in (api.client.get, api.client.delete):
            error = _error(method(f"{url}/{bad}", headers=api.admin), 400)
            assert error["message"].startswith("version must be an integer from 1 to 2147483647"), (bad, error)
    assert _error(api.client.get(f"{base}/{'0' * 32}/versions", headers=api.admin), 404)["code"] == 10003
    assert _error(api.client.delete(f"{base}/{'0' * 32}/versions/1", headers=api.admin), 404)["code"] == 10003
    missing_entry = api.client.get(f"{base}/phases/http_ratelimit/entrypoint/versions", headers=api.admin)
    assert _error(missing_entry, 404)["code"] == 10003

    # A deleted number is never reused: the next write is version 4.
    after = _ok(api.client.put(f"{base}/{rs}", json={"rules": []}, headers=api.admin))
    assert after["version"] == "4"
    assert [v["version"] for v in _ok(api.client.get(url, headers=api.admin))] == ["4", "3", "1"]

    # Deleting a version needs firewall:edit.
    r = api.client.post(
        "/client/v4/user/tokens", json={"name": "ro", "permissions": ["firewall:read"]}, headers=api.admin
    )
    reader = {"Authorization": f"Bearer {_ok(r)['value']}"}
    assert len(_ok(api.client.get(url, headers=reader))) == 3
    assert _error(api.client.delete(f"{url}/1", headers=reader), 403)["code"] == 10000


def test_history_written_before_versions_were_kept(api: ApiEnv) -> None:
    """A ruleset from before migration 4 has no history rows: its current version still lists and reads."""
    zone = api.zone()
    base = _base(zone)
    rs = _ok(api.client.put(f"{base}/phases/{CUSTOM}/entrypoint", json={"rules": [RULE]}, headers=api.admin))
    with api.store.write() as conn:
        conn.execute(delete(schema.ruleset_versions))
    assert _ok(api.client.get(f"{base}/{rs['id']}/versions", headers=api.admin)) == [
        {k: v for k, v in rs.items() if k != "rules"}
    ]
    assert _ok(api.client.get(f"{base}/{rs['id']}/versions/1", headers=api.admin)) == rs
    _ok(api.client.put(f"{base}/{rs['id']}", json={"rules": []}, headers=api.admin))
    listed = _ok(api.client.get(f"{base}/{rs['id']}/versions", headers=api.admin))
    assert [v["version"] for v in listed] == ["2"]
    assert _error(api.client.get(f"{base}/{rs['id']}/versions/1", headers=api.admin), 404)["code"] == 10003


def test_deleting_rulesets_and_zones_deletes_versions(api: ApiEnv) -> None:
    zone, other = api.zone(), api.zone("other.test")
    ids = {}
    for z in (zone, other):
        entry = f"{_base(z)}/phases/{CUSTOM}/entrypoint"
        ids[z] = _ok(api.client.put(entry, json={"rules": [RULE]}, headers=api.admin))["id"]
        _ok(api.client.put(entry, json={"rules": []}, headers=api.admin))
    origin = _ok(api.client.post(_base(zone), json={"name": "o", "phase": "http_request_origin"}, headers=api.admin))
    assert len(_kept(api, zone_id=zone)) == 3

    _ok(api.client.delete(f"{_base(zone)}/{origin['id']}", headers=api.admin), 204)
    assert _kept(api, zone_id=zone) == [(ids[zone], 1), (ids[zone], 2)]
    _ok(api.client.delete(f"/client/v4/zones/{zone}", headers=api.admin))
    assert _kept(api, zone_id=zone) == []
    assert _kept(api, zone_id=other) == [(ids[other], 1), (ids[other], 2)]

    # The schema's ON DELETE CASCADE holds on its own too (SQLite runs with foreign_keys=ON).
    with api.store.write() as conn:
        conn.execute(delete(schema.rulesets).where(schema.rulesets.c.id == ids[other]))
    with api.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(schema.ruleset_versions)).scalar_one() == 0
