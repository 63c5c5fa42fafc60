"""The API against a store that refuses or hangs: 503 with a v4 body in well under a second, writes that
commit before their answer or never, and no SQL in the logs (issue 15). A TCP proxy of the test's own
stands between the API and PostgreSQL to inject the faults."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from originlock.api.app import create_app
from originlock.server.bootstrap import bootstrap
from originlock.store.db import UNAVAILABLE_CODE, Store
from originlock.store.deadline import StoreTimeouts
from originlock.store.errors import StoreUnavailable
from originlock.store.request_scope import request_scope
from originlock.store.settings import get_setting, set_setting
from originlock.testing.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@dataclass
class Env:
    proxy: TcpProxy
    direct: Store
    store: Store
    client: TestClient
    admin: dict[str, str]
    zone: str


@pytest.fixture(scope="module")
def env(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    schema = f"ol_outage_{secrets.token_hex(5)}"
    url = f"{pg_base_url}?schema={schema}"
    deployment = bootstrap(tmp_path_factory.mktemp("outage") / "data", url)
    proxy = TcpProxy(("127.0.0.1", 5432))
    via_proxy = url.replace("127.0.0.1:5432", proxy.address)
    store = Store(via_proxy, deployment.store.sealer, migrate_schema=False)
    admin = {"Authorization": f"Bearer {deployment.new_admin_token}"}
    client = TestClient(create_app(store), raise_server_exceptions=False)
    zone = client.post(
        "/client/v4/zones", json={"name": "outage.test", "account": {"id": deployment.account_id}}, headers=admin
    )
    assert zone.status_code == 200, zone.text
    yield Env(proxy, deployment.store, store, client, admin, zone.json()["result"]["id"])
    proxy.close()
    store.close()
    deployment.store.close()
    from tests.conftest import drop_schema

    drop_schema(schema)


def _recovered(env: Env) -> None:
    env.proxy.set_mode("pass")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if env.client.get(f"/client/v4/zones/{env.zone}", headers=env.admin).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the API did not recover after the store came back")


@pytest.mark.parametrize(("mode", "pool"), [("refuse", "warm"), ("hang", "warm"), ("hang", "empty")])
def test_outage_answers_503_fast_then_recovers(env: Env, mode: str, pool: str) -> None:
    """A warm pool meets the ping's deadline; an empty one (every connection closed) opens a new connection,
    which libpq would wait 2 s for: the connect's own wait (store/connect_wait.py) answers first."""
    url = f"/client/v4/zones/{env.zone}/settings/ssl"
    assert env.client.get(url, headers=env.admin).status_code == 200  # a warm pool
    if pool == "empty":
        env.store.engine.dispose()
    env.proxy.set_mode(mode)  # type: ignore[arg-type]
    try:
        timings = []
        for _ in range(5):
            started = time.monotonic()
            r = env.client.patch(url, json={"value": "strict"}, headers=env.admin)
            timings.append(time.monotonic() - started)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["success"] is False and body["result"] is None
            assert body["errors"][0]["code"] == UNAVAILABLE_CODE
            assert r.headers["retry-after"] == "1"
        # The first meets the ping's deadline (0.5 s) or the connect's (0.75 s), the rest the open breaker;
        # margins for a loaded machine.
        assert max(timings) < 1.0, timings
        assert sorted(timings)[2] < 0.25, timings
    finally:
        _recovered(env)
    with env.direct.read() as conn:
        assert get_setting(conn, env.zone, "ssl").value == "full"  # none of the refused PATCHes applied


def test_a_commit_held_in_the_network_is_never_applied_later(env: Env) -> None:
    """The issue's "applied 40 s later": the COMMIT leaves, the network holds it past the deadline."""
    short = StoreTimeouts(transaction=1.0, statement=1.0, lock=1.0)
    store = env.store.companion(short)

    @event.listens_for(store.engine, "commit")
    def _hang_before_commit(_conn: object) -> None:
        env.proxy.set_mode("hang")  # the COMMIT about to be sent is held by the proxy

    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable), store.write() as conn:
            set_setting(conn, env.zone, "min_tls_version", "1.3")
        assert time.monotonic() - started < 1.5  # cut at the 1 s transaction deadline
        time.sleep(1.5)  # past the server's idle-in-transaction limit (1 s): the session is gone
        env.proxy.set_mode("pass")  # the held COMMIT now reaches the server
        time.sleep(0.5)
        with env.direct.read() as conn:
            assert get_setting(conn, env.zone, "min_tls_version").value == "1.0"
    finally:
        event.remove(store.engine, "commit", _hang_before_commit)
        _recovered(env)
        store.close()


def test_a_hang_after_the_requests_first_use_is_cut_at_the_transaction_deadline(env: Env) -> None:
    """Within one API request the second checkout is not pinged (store/request_scope.py): a hang that begins
    between the two uses still ends in StoreUnavailable, at the transaction's deadline, and opens the breaker."""
    store = env.store.companion(StoreTimeouts(transaction=1.0, statement=1.0, lock=1.0))
    try:
        with request_scope():
            store.generation()  # pinged, then answered: the connection has proved itself
            env.proxy.set_mode("hang")
            started = time.monotonic()
            with pytest.raises(StoreUnavailable), store.write() as conn:
                set_setting(conn, env.zone, "min_tls_version", "1.3")
            assert time.monotonic() - started < 1.5  # the 1-s transaction deadline, not a hang
        assert store.breaker.is_open  # every later request gets its 503 at once
    finally:
        _recovered(env)
        store.close()
    with env.direct.read() as conn:
        assert get_setting(conn, env.zone, "min_tls_version").value == "1.0"


def test_errors_log_a_type_and_an_id_never_the_text(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    app = env.client.app

    @app.get("/boom")  # type: ignore[attr-defined, untyped-decorator]
    def boom() -> None:
        raise RuntimeError("SELECT * FROM api_tokens WHERE secret = 'hunter2'")

    with caplog.at_level(logging.DEBUG):
        r = env.client.get("/boom")
    assert r.status_code == 500
    message = r.json()["errors"][0]["message"]
    error_id = message.rsplit("id ", 1)[1].rstrip(")")
    logged = "\n".join(rec.getMessage() + (rec.exc_text or "") for rec in caplog.records)
    assert error_id in logged and "RuntimeError" in logged
    assert "hunter2" not in logged and "Traceback" not in logged and not any(rec.exc_info for rec in caplog.records)


def test_a_transaction_the_server_ended_for_idling_is_a_503_not_a_500(env: Env) -> None:
    """A client too slow between two statements (a loaded machine) can meet the server's
    idle_in_transaction_session_timeout before its own watchdog: psycopg calls that an InternalError."""
    with pytest.raises(StoreUnavailable), env.store.write() as conn:
        conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = 100"))
        time.sleep(0.5)  # the server ends the session meanwhile
        set_setting(conn, env.zone, "min_tls_version", "1.2")
    _recovered(env)
    with env.direct.read() as conn:
        assert get_setting(conn, env.zone, "min_tls_version").value == "1.0"
    r = env.client.get(f"/client/v4/zones/{env.zone}/settings/min_tls_version", headers=env.admin)
    assert r.status_code == 200 and r.json()["result"]["value"] == "1.0"
