"""One API request, one ping: the gate's token lookup proves the connection its write and audit entry reuse
(store/request_scope.py). SQLite has no ping; the same write answers and is audited on both stores. The
write's refresh of this process's edge runs after the response is out."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.api.conftest import ApiEnv

from originlock.store import schema
from originlock.store.settings import set_setting


def test_a_patch_pings_the_store_once_and_is_written_and_audited(api: ApiEnv) -> None:
    zone = api.zone()
    url = f"/client/v4/zones/{zone}/settings/always_use_https"
    pings: list[int] = []
    dialect: Any = api.store.engine.dialect
    real = dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        pings.append(1)
        return bool(real(dbapi_conn))

    dialect.do_ping = counted
    for value in ("on", "off", "on"):
        r = api.client.patch(url, json={"value": value}, headers=api.admin)
        assert r.status_code == 200, r.text
        assert r.json()["result"]["value"] == value
    # PostgreSQL: the gate's checkout only, not the write's nor the audit entry's (three each before).
    assert len(pings) == (3 if api.store.backend == "postgresql" else 0)
    assert api.client.get(url, headers=api.admin).json()["result"]["value"] == "on"
    with api.store.read() as conn:
        audited = conn.execute(select(schema.audit_events.c.resource_id)).scalars().all()
    assert audited.count("always_use_https") == 3


def test_a_writes_hooks_run_after_its_response_is_out_and_at_once_outside_a_request(api: ApiEnv) -> None:
    """This process's edge refresh (``Store.committed_hooks``) does not compete with the API response."""
    zone = api.zone()
    events: list[str] = []
    api.store.committed_hooks.append(lambda change: events.append(f"hook {change.writer == api.store.writer_id}"))
    app: Any = api.client.app

    async def recorder(scope: Any, receive: Any, send: Any) -> None:
        async def recorded(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                events.append("response sent")
            await send(message)

        await app(scope, receive, recorded)

    with TestClient(recorder) as client:
        r = client.patch(f"/client/v4/zones/{zone}/settings/ssl", json={"value": "strict"}, headers=api.admin)
    assert r.status_code == 200, r.text
    assert events == ["response sent", "hook True"]
    events.clear()
    with api.store.write() as conn:  # a job's write, not a request's: its hooks run at its commit
        set_setting(conn, zone, "ssl", "full")
        assert events == []
    assert events == ["hook True"]
