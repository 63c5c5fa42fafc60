"""One API request, one ping: the gate's token lookup proves the connection its write and audit entry reuse
(store/request_scope.py). SQLite has no ping; the same write answers and is audited on both stores."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from tests.api.conftest import ApiEnv

from originlock.store import schema


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
